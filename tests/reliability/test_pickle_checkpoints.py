"""Files that hold pickled objects are refused with rlsuite's own message, whatever the
container and whatever torch's wording; torch's advice to load with ``weights_only=False`` is
never shown."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rlsuite.runs import CheckpointError, load_checkpoint


class Payload:
    """Any class: unpickling a file that names it would import and build it."""


def _raw_pickle(path):
    path.write_bytes(pickle.dumps({"weights": Payload()}))


def _torch_object(path):
    torch.save(Payload(), path)


def _nested(path):
    payload = {
        "format": "rlsuite-checkpoint",
        "version": 1,
        "metadata": "{}",
        "tensors": {"agent/w": torch.zeros(2)},
        "extra": [{"deep": Payload()}],
    }
    torch.save(payload, path)


def _legacy(path):
    torch.save({"w": Payload()}, path, _use_new_zipfile_serialization=False)


def _npz_objects(path):
    with open(path, "wb") as file:
        np.savez(file, a=np.array([Payload()], dtype=object))


@pytest.mark.parametrize("write", [_raw_pickle, _torch_object, _nested, _legacy, _npz_objects])
def test_pickled_payloads_are_refused_without_torchs_advice(write, tmp_path) -> None:
    path = tmp_path / "file.pt"
    write(path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "will not be unpickled" in message and "rlsuite never loads such a file" in message
    assert "Payload" in message or "object array" in message
    assert "weights_only" not in message and "Re-running" not in message


def test_random_bytes_are_reported_as_not_a_torch_file(tmp_path) -> None:
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(CheckpointError, match="truncated, corrupt or not a torch file") as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value) and "allow_pickle" not in str(info.value)
