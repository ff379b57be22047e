"""Checkpoints (safe to load, atomic to write) and run directories (metrics, pruning, resume)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rlsuite.config import ConfigError
from rlsuite.runs import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    RunDir,
    RunDirError,
    load_checkpoint,
    save_checkpoint,
)

CONFIG = {
    "env": {"id": "rlsuite/SOR-ShiftedLaplacian-v0"},
    "agent": {"name": "a"},
    "train": {"total_steps": 10},
}
META = {
    "rlsuite_version": "0.1.0",
    "env_id": "rlsuite/SOR-ShiftedLaplacian-v0",
    "agent": "a",
    "training_seeds": [0, 1],
}


def tensors(value: float = 1.0) -> dict[str, torch.Tensor]:
    return {"agent/w": torch.full((3, 2), value), "agent/n": torch.tensor(7)}


# -- checkpoint files -----------------------------------------------------------------------------


def test_round_trip_tensors_and_metadata(tmp_path: Path) -> None:
    base = torch.arange(100.0)
    state = {
        "weights": torch.randn(4, 5, dtype=torch.float64),
        "view": base[10:13],  # a view: saved without its 100-element base
        "transposed": torch.arange(6).reshape(2, 3).t(),
        "rng": torch.get_rng_state(),
        "param": torch.nn.Parameter(torch.ones(2)),
        "from_numpy": np.arange(4, dtype=np.int32)[::-1],
    }
    meta = {
        "big": 2**127,
        "neg": -(2**100),
        "nested": {"list": [1, 2.5, None, True, "x"]},
        "tuple": (1, 2),
    }
    path = save_checkpoint(tmp_path / "sub" / "c.pt", state, meta)
    assert path == tmp_path / "sub" / "c.pt"
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == {**meta, "tuple": [1, 2]}
    assert loaded_meta["big"] == 2**127
    assert loaded.keys() == state.keys()
    for key in ("weights", "view", "transposed", "rng"):
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)
    assert loaded["view"].untyped_storage().nbytes() == 3 * 4
    assert type(loaded["param"]) is torch.Tensor and not loaded["param"].requires_grad
    assert (
        loaded["from_numpy"].tolist() == [3, 2, 1, 0] and loaded["from_numpy"].dtype == torch.int32
    )
    raw = torch.load(path, weights_only=True)  # what the format promises
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == CHECKPOINT_VERSION
    assert json.loads(raw["metadata"]) == loaded_meta
    assert not list(path.parent.glob(".*")), "temporary files left behind"


def test_numpy_scalars_in_metadata_become_numbers(tmp_path: Path) -> None:
    _, meta = load_checkpoint(
        save_checkpoint(tmp_path / "c.pt", {}, {"n": np.int64(3), "x": np.float32(0.5)})
    )
    assert meta == {"n": 3, "x": 0.5} and type(meta["n"]) is int


@pytest.mark.parametrize(
    ("meta", "pattern"),
    [
        (
            {"config": {"w": np.zeros(3)}},
            r"metadata\['config'\]\['w'\]: a numpy\.ndarray is not allowed .* "
            r"put arrays in the tensors",
        ),
        (
            {"t": torch.zeros(2)},
            r"metadata\['t'\]: a torch\.Tensor is not allowed .* put arrays in the tensors",
        ),
        ({"obj": object()}, r"metadata\['obj'\]: object value .* is not JSON-serialisable"),
        (
            {"path": [1, {"p": Path("x")}]},
            r"metadata\['path'\]\[1\]\['p'\]: .*Path value .* is not JSON-serialisable",
        ),
        ({"keys": {1: "a"}}, r"metadata\['keys'\]: key 1 \(int\) is not a string"),
    ],
)
def test_metadata_must_be_json(tmp_path: Path, meta: dict, pattern: str) -> None:
    with pytest.raises(CheckpointError, match=r"cannot save checkpoint .*c\.pt: " + pattern):
        save_checkpoint(tmp_path / "c.pt", {}, meta)
    assert not (tmp_path / "c.pt").exists()


def test_tensor_names_and_values_are_checked(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"tensor name 3 \(int\) is not a string"):
        save_checkpoint(tmp_path / "c.pt", {3: torch.zeros(1)}, {})  # type: ignore[dict-item]
    with pytest.raises(
        CheckpointError, match=r"tensors\['w'\]: expected a torch\.Tensor or numpy array, got list"
    ):
        save_checkpoint(tmp_path / "c.pt", {"w": [1.0]}, {})  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match=r"tensors\['o'\]: numpy array of dtype object"):
        save_checkpoint(tmp_path / "c.pt", {"o": np.array([object()])}, {})  # type: ignore[dict-item]


def test_missing_empty_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"checkpoint '.*nope\.pt' not found"):
        load_checkpoint(tmp_path / "nope.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint '.*empty\.pt' is empty \(0 bytes\); expected an rlsuite checkpoint",
    ):
        load_checkpoint(empty)
    whole = save_checkpoint(tmp_path / "whole.pt", tensors(), {"a": 1})
    data = whole.read_bytes()
    for name, cut in [
        ("half.pt", data[: len(data) // 2]),
        ("tail.pt", data[:-5]),
        ("junk.pt", b"not a checkpoint" * 4),
    ]:
        (tmp_path / name).write_bytes(cut)
        with pytest.raises(
            CheckpointError, match=rf"checkpoint '.*{name}' cannot be read \(truncated, corrupt"
        ):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match=r"is not a file"):
        load_checkpoint(tmp_path)


def _write_marker(path: str) -> None:
    Path(path).write_text("code ran")


class Payload:
    """Unpickling this object would write a marker file: an arbitrary-code stand-in."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (_write_marker, (str(self.marker),))


def test_foreign_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "payload": Payload(marker)}, evil)
    assert not marker.exists()
    with pytest.raises(
        CheckpointError,
        match=r"'.*evil\.pt' is not an rlsuite checkpoint: .*_write_marker.* will not be unpickled",
    ):
        load_checkpoint(evil)
    assert not marker.exists(), "loading executed code from the file"
    # control: a plain unpickler does run the payload, so the refusal above is what saved us
    torch.load(evil, weights_only=False)
    assert marker.read_text() == "code ran"


def test_plain_dicts_and_other_objects_are_not_checkpoints(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2), "step": 3}, plain)
    with pytest.raises(
        CheckpointError,
        match=r"'.*plain\.pt' is not an rlsuite checkpoint: it holds a dict with keys "
        r"\['step', 'w'\] without the 'format': 'rlsuite-checkpoint' marker",
    ):
        load_checkpoint(plain)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(CheckpointError, match=r"it holds a Tensor without the 'format'"):
        load_checkpoint(tensor)


def test_newer_or_invalid_versions_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.pt"
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION + 1,
            "metadata": "{}",
            "tensors": {},
        },
        newer,
    )
    with pytest.raises(
        CheckpointError,
        match=r"'.*newer\.pt' has format version 2, newer than this rlsuite reads "
        r"\(version <= 1\); upgrade",
    ):
        load_checkpoint(newer)
    odd = tmp_path / "odd.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": "1", "metadata": "{}", "tensors": {}}, odd)
    with pytest.raises(CheckpointError, match=r"has an invalid version '1'"):
        load_checkpoint(odd)
    broken = tmp_path / "broken.pt"
    torch.save(
        {"format": CHECKPOINT_FORMAT, "version": 1, "metadata": "[1]", "tensors": {}}, broken
    )
    with pytest.raises(
        CheckpointError,
        match=r"'.*broken\.pt' is damaged: 'metadata' is not the JSON text of a mapping",
    ):
        load_checkpoint(broken)


def test_checkpoint_errors_are_value_errors() -> None:
    assert issubclass(CheckpointError, ValueError) and issubclass(RunDirError, ValueError)
    assert issubclass(ConfigError, ValueError)


# -- run directories ------------------------------------------------------------------------------


def test_create_open_and_refuse_non_empty(tmp_path: Path) -> None:
    path = tmp_path / "run"
    with RunDir.create(path, CONFIG, META) as run:
        assert run.config == CONFIG and run.meta["agent"] == "a" and "created" in run.meta
    opened = RunDir.open(path)
    assert opened.config == CONFIG and opened.meta == run.meta
    assert json.loads((path / "meta.json").read_text()) == run.meta
    with pytest.raises(
        RunDirError,
        match=r"run directory '.*run' already exists and is not empty; "
        r"continue that run with --resume, or choose another --run-dir",
    ):
        RunDir.create(path, CONFIG, META)
    RunDir.create(path, {**CONFIG, "name": "again"}, META, exist_ok=True)
    assert RunDir.open(path).config["name"] == "again"
    (tmp_path / "empty").mkdir()
    RunDir.create(tmp_path / "empty", CONFIG, META)  # an existing empty directory is fine


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"run directory '.*missing' not found"):
        RunDir.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(
        RunDirError, match=r"'.*plain' is not an rlsuite run directory: it has no config\.yaml"
    ):
        RunDir.open(tmp_path / "plain")


def test_metrics_rows_nan_as_null_and_tensorboard(tmp_path: Path) -> None:
    with RunDir.create(tmp_path / "run", CONFIG, META) as run:
        assert not (tmp_path / "run" / "tb").exists(), "TensorBoard writer must be created lazily"
        run.log_metrics(
            10, {"loss": 0.5, "bad": math.nan, "big": math.inf, "count": 3, "t": torch.tensor(2.0)}
        )
        run.log_metrics(20, {"loss": np.float32(0.25)})
        with pytest.raises(ValueError, match="metric name 'step' is reserved"):
            run.log_metrics(30, {"step": 1.0})
        with pytest.raises(
            ValueError, match=r"metric 'v': expected a scalar, got an array of shape \(2,\)"
        ):
            run.log_metrics(30, {"v": torch.zeros(2)})
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["bad"] is None and first["big"] is None and "NaN" not in lines[0]
    assert first["count"] == 3 and first["t"] == 2.0 and first["loss"] == 0.5
    rows = RunDir.open(tmp_path / "run").read_metrics()
    assert [r["step"] for r in rows] == [10, 20]
    assert all(isinstance(r["time"], float) and r["time"] >= 0 for r in rows)
    assert list((tmp_path / "run" / "tb").iterdir()), "no TensorBoard event file"


def test_truncate_metrics_for_resume(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    for step in (10, 20, 30, 40):
        run.log_metrics(step, {"x": float(step)})
    run.close()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": 50, "x": 5')  # a row cut short by a kill
    resumed = RunDir.open(tmp_path / "run")
    assert [r["step"] for r in resumed.read_metrics()] == [10, 20, 30, 40]
    resumed.truncate_metrics(20)
    assert [r["step"] for r in resumed.read_metrics()] == [10, 20]
    resumed.log_metrics(30, {"x": 30.0})
    resumed.close()
    rows = RunDir.open(tmp_path / "run").read_metrics()
    assert [(r["step"], r["x"]) for r in rows] == [(10, 10.0), (20, 20.0), (30, 30.0)]
    assert rows[2]["time"] >= rows[1]["time"], "time continues across a resume"


def test_corrupt_metrics_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(RunDirError, match=r"metrics\.jsonl:2: not a metrics row"):
        run.read_metrics()


def test_checkpoints_latest_and_keep_last_three(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    assert run.latest_checkpoint() is None
    for step in (100, 200, 300, 400, 500):
        path = run.save_checkpoint(step, tensors(float(step)), {"agent": "a"})
        assert path.name == f"step_{step:012d}.pt"
    files = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert files == [
        "latest",
        "step_000000000300.pt",
        "step_000000000400.pt",
        "step_000000000500.pt",
    ]
    assert (
        tmp_path / "run" / "checkpoints" / "latest"
    ).read_text().strip() == "step_000000000500.pt"
    latest = RunDir.open(tmp_path / "run").latest_checkpoint()
    assert latest == path
    loaded, meta = load_checkpoint(latest)
    assert meta == {"agent": "a", "step": 500}
    torch.testing.assert_close(loaded["agent/w"], torch.full((3, 2), 500.0))
    run.save_checkpoint(600, tensors(), {}, keep=1)
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*.pt")] == [
        "step_000000000600.pt"
    ]


def test_just_written_checkpoint_is_never_pruned(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    for step in (300, 400, 500):
        run.save_checkpoint(step, tensors(), {})
    path = run.save_checkpoint(100, tensors(), {})  # lower step than the others (e.g. a restart)
    assert path.exists() and run.latest_checkpoint() == path
    assert len(list((tmp_path / "run" / "checkpoints").glob("step_*.pt"))) == 4


def test_latest_falls_back_to_highest_loadable(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    for step in (1, 2, 3):
        run.save_checkpoint(step, tensors(), {})
    ckpts = tmp_path / "run" / "checkpoints"
    (ckpts / "latest").write_text("garbage/../../x")
    assert run.latest_checkpoint() == ckpts / "step_000000000003.pt"
    (ckpts / "latest").unlink()
    data = (ckpts / "step_000000000003.pt").read_bytes()
    (ckpts / "step_000000000003.pt").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"skipped a checkpoint .*step_000000000003\.pt"):
        assert run.latest_checkpoint() == ckpts / "step_000000000002.pt"
    (ckpts / "latest").write_text("step_000000000003.pt\n")  # names the corrupt one
    with pytest.warns(UserWarning, match=r"skipped a checkpoint .*step_000000000003\.pt"):
        assert run.latest_checkpoint() == ckpts / "step_000000000002.pt"


@pytest.mark.parametrize("fail_on_call", [1, 2])
def test_crash_mid_save_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    """os.replace fails on the checkpoint file (call 1) or on ``latest`` (call 2)."""
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    first = run.save_checkpoint(10, tensors(1.0), {"n": 1})
    before = first.read_bytes()
    real_replace = os.replace
    calls = []

    def crashing_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        calls.append(dst)
        if len(calls) == fail_on_call:
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        run.save_checkpoint(20, tensors(2.0), {"n": 2})
    monkeypatch.undo()
    assert first.read_bytes() == before
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == first.name
    assert run.latest_checkpoint() == first
    loaded, meta = load_checkpoint(run.latest_checkpoint())
    assert meta == {"n": 1, "step": 10}
    torch.testing.assert_close(loaded["agent/w"], torch.full((3, 2), 1.0))
    assert not list(ckpts.glob(".*")), "temporary files left behind"
    assert (ckpts / "step_000000000020.pt").exists() == (fail_on_call == 2)


def test_standalone_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "agent.pt", tensors(1.0), {"v": 1})

    def crash(*_: object) -> None:
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, tensors(2.0), {"v": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)[1] == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.pt"]


def test_checkpoint_step_must_be_an_int(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run", CONFIG, META)
    with pytest.raises(CheckpointError, match=r"step must be a non-negative int, got 1\.5"):
        run.save_checkpoint(1.5, {}, {})  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match=r"keep must be an int >= 1, got 0"):
        run.save_checkpoint(1, {}, {}, keep=0)
