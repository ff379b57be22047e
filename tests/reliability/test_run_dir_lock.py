"""Run directories are created atomically and locked while a training process writes them:
two creators at once, ``--resume`` while the run is still going, a lock left by a killed run;
metrics on resume and a corrupt metrics line."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket

import pytest

from rlsuite.cli import main
from rlsuite.runs import RunDir, RunDirError

CONFIG = {"name": "x"}


def _create(path: str, barrier, results) -> None:
    import time

    import rlsuite.runs as runs

    real = runs.config_to_dict

    def slow_config_to_dict(config):  # widen the window between the checks and the writes
        time.sleep(0.3)
        return real(config)

    runs.config_to_dict = slow_config_to_dict
    barrier.wait()
    try:
        RunDir.create(path, CONFIG, {"who": os.getpid()})
        results.put("created")
    except RunDirError as err:
        results.put(f"refused: {err}")


def test_two_processes_creating_one_run_exactly_one_succeeds(tmp_path) -> None:
    context = multiprocessing.get_context("fork")
    for attempt in range(3):
        path = str(tmp_path / f"run{attempt}")
        barrier, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_create, args=(path, barrier, results)) for _ in "ab"]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        outcomes = sorted(results.get(timeout=10) for _ in workers)
        assert outcomes[0] == "created" and outcomes[1].startswith("refused: "), outcomes


def test_the_lock_names_the_holder_and_is_released(tmp_path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, {})
    holder = json.loads((tmp_path / "run" / "lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    run.close()
    assert not (tmp_path / "run" / "lock").exists()


def _lock(run, pid: int) -> None:
    (run / "lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))


def test_resume_while_the_run_is_still_going_is_refused(trained_run, capsys) -> None:
    _lock(trained_run, os.getppid())  # a live process on this host holds it
    assert main(["train", "--resume", str(trained_run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"is in use by process {os.getppid()}" in err and "still going" in err


def test_a_lock_left_by_a_killed_run_is_taken_over(trained_run, capsys) -> None:
    process = multiprocessing.get_context("fork").Process(target=lambda: None)
    process.start()
    process.join()
    _lock(trained_run, process.pid)  # that pid no longer runs
    assert main(["train", "--resume", str(trained_run), "--no-progress"]) == 0
    assert not (trained_run / "lock").exists()


def test_resume_from_an_older_checkpoint_truncates_metrics_to_its_step(trained_run) -> None:
    latest = trained_run / "checkpoints" / "step_000000000120.pt"
    latest.write_bytes(latest.read_bytes()[:100])
    rows = RunDir.open(trained_run).read_metrics()
    assert rows[-1]["step"] == 120
    run = RunDir.open(trained_run)
    with pytest.warns(UserWarning, match="step_000000000120.pt"):
        checkpoint = run.latest_checkpoint()
    assert checkpoint.name == "step_000000000080.pt"
    assert main(["train", "--resume", str(trained_run), "--no-progress"]) == 0
    steps = [row["step"] for row in RunDir.open(trained_run).read_metrics()]
    assert steps == sorted(set(steps)) and steps[-1] == 120  # no duplicated rows after 80


def test_a_corrupt_metrics_line_does_not_stop_eval(trained_run, capsys) -> None:
    metrics = trained_run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[2] = "{not json"
    metrics.write_text("\n".join(lines) + "\n")
    assert main(["eval", str(trained_run)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_scheduler_may_take_over_a_lock(trained_run) -> None:
    from rlsuite.training import train

    (trained_run / "lock").write_text(json.dumps({"pid": 1, "host": "another-node"}))
    with pytest.raises(RunDirError, match="in use by process 1 on another-node"):
        train(None, resume=trained_run, progress=False)  # type: ignore[arg-type]
    train(None, resume=trained_run, progress=False, take_over_lock=True)  # type: ignore[arg-type]
    assert not (trained_run / "lock").exists()
