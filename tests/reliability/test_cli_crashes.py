"""What used to crash with a traceback: every agent family's ``save`` then ``rlsuite eval``,
a small CoRMAB-Path graph, ``rlsuite bench`` arguments, output paths of ``rlsuite eval``, a run
directory under a file, and Ctrl-C during ``rlsuite train``. Each is a one-line error (exit
status 2) before any work, or works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import pytest

import rlsuite  # noqa: F401  (registers the ids)
from rlsuite.cli import main
from rlsuite.registry import get_agent_class

SOR = "rlsuite/SOR-ShiftedLaplacian-v0"
SOR_KWARGS = {"variance": "low", "n": 6, "sequence_length": 4}


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("rlsuite "), err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    ("agent", "env_id", "kwargs", "learn"),
    [
        ("tsallis_inf", SOR, SOR_KWARGS, 12),
        ("chebcb", SOR, SOR_KWARGS, 12),
        ("malloc.best-fit", "rlsuite/MallocGame-v0", {}, 4),
        ("sb3.PPO", SOR, SOR_KWARGS, 0),
    ],
)
def test_agent_save_then_rlsuite_eval(agent, env_id, kwargs, learn, tmp_path, capsys) -> None:
    if agent.startswith("sb3."):
        pytest.importorskip("stable_baselines3")
    env = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **kwargs)
    instance = get_agent_class(agent)(env, seed=5)
    if learn:
        instance.learn(learn)
    path = instance.save(tmp_path / "agent.pt")
    out = tmp_path / "e.json"
    assert main(["eval", str(path), "--episodes", "2", "--json", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    row = __import__("json").loads(out.read_text())[0]
    assert row["policy"] == agent and row["episodes"] == 2
    assert row["checkpoint"] == str(path) and row["step"] == learn
    assert row["training_seeds"] == [5, 6]


@pytest.mark.parametrize(("num_arms", "graph"), [(2, None), (3, None), (3, [[0, 1], [1, 2]])])
def test_small_cormab_path_graphs_build(num_arms, graph) -> None:
    kwargs = {} if graph is None else {"graph": graph}
    env = gym.make("rlsuite/CoRMAB-Path-v0", num_arms=num_arms, budget=1, **kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    if graph is not None:
        edges = env.unwrapped.core.instances[0].structure["edges"]
        assert sorted(map(tuple, edges.tolist())) == [(0, 1), (1, 2)]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--min-seconds", "nan"], ["--min-seconds must be a finite number", "nan"]),
        (["--min-seconds", "inf"], ["--min-seconds must be a finite number", "inf"]),
        (["--device", "gpu0"], ["device='gpu0' is not a device"]),
        (["--num-envs", "10000000"], ["--num-envs 10000000: about", "GiB estimated", "KiB per"]),
    ],
)
def test_bench_arguments_are_one_line_errors(args, needles, capsys) -> None:
    start = time.monotonic()
    assert main(["bench", SOR, "--set", "n=6", *args]) == 2
    _one_line_error(capsys, *needles)
    assert time.monotonic() - start < 60


def test_bench_bad_env_id_and_malformed_action(capsys) -> None:
    assert main(["bench", "rlsuite/Nope-v0"]) == 2
    _one_line_error(capsys, "unknown environment 'rlsuite/Nope-v0'", "rlsuite list")
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage and one error line
        main(["bench", SOR, "--action", "[1"])
    assert exit_info.value.code == 2
    _one_line_error(capsys, "--action takes one action as YAML", "'[1' is not valid YAML")


def test_gym_make_with_a_device_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"device='gpu'.*single env.*make_vec"):
        gym.make(SOR, device="gpu")
    with pytest.raises(ValueError, match=r"device='gpu' is not a device; use 'cpu', 'cuda'"):
        gym.make_vec(SOR, num_envs=2, vectorization_mode="vector_entry_point", device="gpu")


def test_eval_checks_arguments_and_output_paths_before_any_work(
    trained_run, tmp_path, capsys, monkeypatch
) -> None:
    import rlsuite.evaluation as evaluation

    def no_work(*args, **kwargs):
        raise AssertionError("evaluate() ran before the arguments were checked")

    monkeypatch.setattr(evaluation, "evaluate", no_work)
    assert main(["eval", str(trained_run), "--json", str(tmp_path)]) == 2
    _one_line_error(capsys, f"--json {tmp_path}: is a directory")
    missing = tmp_path / "nope" / "e.json"
    assert main(["eval", str(trained_run), "--json", str(missing)]) == 2
    _one_line_error(capsys, f"the directory {missing.parent} does not exist")
    assert main(["eval", str(trained_run), "--device", "gpu0"]) == 2
    _one_line_error(capsys, "device='gpu0' is not a device")
    monkeypatch.undo()
    assert main(["eval", str(trained_run), "--seeds", "-5:3"]) == 2
    _one_line_error(capsys, "--seeds: expected 'A:B'", "'-5:3'")


def test_run_dir_under_a_regular_file(make_config, tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    config = make_config()
    assert main(["train", str(config), "--run-dir", str(tmp_path / "file" / "run")]) == 2
    _one_line_error(capsys, "is under", "which is a file, not a directory")


def test_ctrl_c_during_train_prints_the_resume_command(make_config, tmp_path) -> None:
    config = make_config(train__total_steps=10_000_000)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rlsuite.cli", "train", str(config), "--run-dir", str(run)]
    process = subprocess.Popen(
        [*command, "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "latest").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"continue with: rlsuite train --resume {run}" in lines[0]
    assert "its latest checkpoint is step" in lines[0]
    assert not (run / "lock").exists()
