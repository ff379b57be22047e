"""``rlsuite sweep --address`` on a real Ray cluster: a head and a worker node started with
``ray start`` (one CPU each, on this machine), the sweep run as a separate driver process.

Needs the ``[ray]`` extra (``pytest -m ray``). Both nodes and the driver run with
``RAY_AUTH_MODE=disabled``: token authentication (on by default since Ray 2.5x) is a deployment
matter, and a fresh machine has no token to share between the processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.ray

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "sor" / "tsallis_inf.yaml")
TINY = [
    "train.total_steps=40",
    "train.checkpoint_every=20",
    "train.log_every=10",
    "env.kwargs.n=6",
    "eval.episodes=2",
    "eval.baselines=[]",
]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    probe = "import ray; ray.init(address=%r); print(sum(n['Alive'] for n in ray.nodes()))"
    done = subprocess.run(
        [sys.executable, "-c", probe % address], env=env, capture_output=True, text=True, timeout=60
    )
    return int(done.stdout.split()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    pytest.importorskip("ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    address = f"127.0.0.1:{_free_port()}"
    # its own temp dir: `ray start --head` records its address there (ray_current_cluster), where
    # a later plain ray.init() in another test would otherwise find it and try to connect
    temp_dir = tempfile.mkdtemp(prefix="rlsuite-ray-", dir="/tmp")  # short: unix socket paths
    common = ["--num-cpus=1", "--disable-usage-stats", "--block", f"--temp-dir={temp_dir}"]
    nodes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    try:
        for i, role in enumerate(
            (
                ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false"],
                [f"--address={address}"],
            )
        ):
            logs.append(open(tmp_path / f"node{i}.log", "wb"))
            log = logs[-1]
            nodes.append(
                subprocess.Popen(
                    [str(BIN / "ray"), "start", *role, *common],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            deadline = time.monotonic() + 90
            while _alive_nodes(address, env) < i + 1:
                if time.monotonic() > deadline or nodes[-1].poll() is not None:
                    pytest.fail(
                        f"ray node {i} did not start: {(tmp_path / f'node{i}.log').read_text()}"
                    )
                time.sleep(1)
        yield address, env
    finally:
        for node in reversed(nodes):  # each `ray start --block` stops its node's processes
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=60)
        for log in logs:
            log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_sweep_runs_its_trials_on_both_nodes(
    cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = cluster
    out = tmp_path / "sweep"
    args = ["sweep", CONFIG, "--grid", "agent.params.learning_rate_scale=0.5,2", "--seeds", "2"]
    args += ["--address", address, "--out", str(out), *(f"--set={o}" for o in TINY)]
    done = subprocess.run(
        [str(BIN / "rlsuite"), *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(row["attempt"] == 1 for row in rows)
    assert len({row["node"] for row in rows}) == 2  # one CPU per node: both took trials
    summary = json.loads((out / "sweep.json").read_text())
    assert [row["seeds_done"] for row in summary["rows"]] == [2, 2]
    for trial in summary["trials"]:
        assert Path(trial["run_dir"], "eval", "results.json").is_file()
