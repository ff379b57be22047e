"""``rlsuite eval`` never reports a number it should not: training seeds are refused for a
checkpoint file as for its run, the report names the checkpoint it evaluated, a corrupt latest
checkpoint is reported, another run's checkpoint and NaN weights are refused, and ``train
--resume`` never silently restarts from step 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlsuite.cli import main
from rlsuite.runs import load_checkpoint, save_checkpoint

LAST = "step_000000000120.pt"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _squeeze(text: str) -> str:
    return "".join(text.split()).replace("│", "")


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("how", ["checkpoint file", "run without meta.json"])
def test_training_seeds_of_a_batched_run_are_refused(make_config, tmp_path, capsys, how) -> None:
    # sb3.PPO on 4 envs from seed 3 trains on seeds 3..6
    config = make_config(
        agent__name="sb3.PPO",
        agent__params={"kwargs": {"n_steps": 8, "batch_size": 32}},
        env__num_envs=4,
        train__total_steps=64,
        train__checkpoint_every=32,
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["eval", str(tmp_path / "run"), "--seeds", "5:8"]) == 2
    assert "evaluation seeds [5, 6] were used in training (seeds 3:7)" in _error(capsys)
    if how == "checkpoint file":
        target = str(tmp_path / "run" / "checkpoints" / "step_000000000064.pt")
    else:
        (tmp_path / "run" / "meta.json").unlink()
        target = str(tmp_path / "run")
    assert main(["eval", target, "--seeds", "5:8"]) == 2
    assert "evaluation seeds [5, 6] were used in training (seeds 3:7)" in _error(capsys)
    assert main(["eval", target, "--seeds", "7:10"]) == 0


def test_a_checkpoint_without_a_seed_record_says_so(trained_run, tmp_path, capsys) -> None:
    tensors, meta = load_checkpoint(trained_run / "checkpoints" / LAST)
    for key in ("seed", "training_seeds", "experiment"):
        meta.pop(key, None)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("env/")}
    bare = save_checkpoint(tmp_path / "bare.pt", tensors, meta)
    out_json = tmp_path / "e.json"
    assert main(["eval", str(bare), "--seeds", "3:6", "--json", str(out_json)]) == 0
    assert "trainingseedsunknown" in _squeeze(capsys.readouterr().out)
    row = json.loads(out_json.read_text())[0]
    assert row["training_seeds"] is None
    assert any("training seeds unknown" in note for note in row["notes"])


def test_the_report_names_the_checkpoint_and_its_step(trained_run, tmp_path, capsys) -> None:
    out_json = tmp_path / "e.json"
    assert main(["eval", str(trained_run), "--json", str(out_json)]) == 0
    expected = f"checkpoint {trained_run / 'checkpoints' / LAST} (step 120)"
    assert _squeeze(expected) in _squeeze(capsys.readouterr().out)  # rich wraps long lines
    row = json.loads(out_json.read_text())[0]
    assert row["checkpoint"] == str(trained_run / "checkpoints" / LAST)
    assert (row["step"], row["training_seeds"], row["notes"]) == (120, [3, 4], [])


def test_a_corrupt_latest_checkpoint_is_reported(trained_run, tmp_path, capsys) -> None:
    _truncate(trained_run / "checkpoints" / LAST)
    out_json = tmp_path / "e.json"
    assert main(["eval", str(trained_run), "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    assert LAST in captured.err and "does not load" in captured.err
    row = json.loads(out_json.read_text())[0]
    assert row["step"] == 80 and row["checkpoint"].endswith("step_000000000080.pt")
    assert len(row["notes"]) == 1 and LAST in row["notes"][0]


def test_a_run_whose_checkpoints_all_fail_to_load_is_an_error(trained_run, capsys) -> None:
    for path in (trained_run / "checkpoints").glob("step_*.pt"):
        _truncate(path)
    assert main(["eval", str(trained_run)]) == 2
    err = _error(capsys)
    assert "3 checkpoint file(s) but none of them loads" in err and LAST in err
    assert "no checkpoint yet" not in err
    # --resume must not retrain from step 0 over them
    assert main(["train", "--resume", str(trained_run), "--no-progress"]) == 2
    assert "none of them loads" in _error(capsys)


def test_a_checkpoint_of_another_agent_in_the_run_is_refused(trained_run, capsys) -> None:
    tensors, meta = load_checkpoint(trained_run / "checkpoints" / LAST)
    save_checkpoint(trained_run / "checkpoints" / LAST, tensors, {**meta, "agent": "chebcb"})
    assert main(["eval", str(trained_run)]) == 2
    assert "its agent is 'chebcb'" in _error(capsys)
    assert main(["train", "--resume", str(trained_run), "--no-progress"]) == 2
    assert "its agent is 'chebcb'" in _error(capsys)


def test_a_checkpoint_of_another_env_in_the_run_is_refused(trained_run, capsys) -> None:
    tensors, meta = load_checkpoint(trained_run / "checkpoints" / LAST)
    meta["experiment"]["env"]["kwargs"]["n"] = 8
    save_checkpoint(trained_run / "checkpoints" / LAST, tensors, meta)
    assert main(["eval", str(trained_run)]) == 2
    assert "its env.kwargs is" in _error(capsys)


def test_nan_weights_are_refused(trained_run, capsys) -> None:
    path = trained_run / "checkpoints" / LAST
    tensors, meta = load_checkpoint(path)
    tensors["agent/cumulative_loss"][0, 2] = float("nan")
    save_checkpoint(path, tensors, meta)
    assert main(["eval", str(path)]) == 2
    assert "NaN or infinite values in agent/cumulative_loss" in _error(capsys)
    assert main(["eval", str(trained_run)]) == 2
    assert main(["train", "--resume", str(trained_run), "--no-progress"]) == 2
    assert "agent/cumulative_loss" in _error(capsys)
