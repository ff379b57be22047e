"""Files of garbage get errors that name the file and say what it should be, never a codec
error or numpy's advice to load pickled data."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from rlsuite.envs.malloc.instances import InstanceError, load_instance
from rlsuite.envs.qcode.codes import load_code
from rlsuite.envs.qcode.css import CodeError


def test_a_binary_garbage_minimalloc_csv_names_the_file(tmp_path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"id,lower,upper,size\n" + os.urandom(64) + b"\xff\xfe\x80")
    with pytest.raises(InstanceError, match=r"garbage\.csv: not a text CSV") as caught:
        load_instance(path)
    assert "UTF-8" in str(caught.value)


@pytest.mark.parametrize(
    "payload",
    [os.urandom(256), pickle.dumps({"hx": np.eye(2)}), b"PK\x03\x04" + os.urandom(64)],
    ids=["random bytes", "a pickle", "a broken zip"],
)
def test_a_garbage_npz_code_names_the_file_and_never_advises_unpickling(tmp_path, payload) -> None:
    path = tmp_path / "code.npz"
    path.write_bytes(payload)
    with pytest.raises(CodeError, match=r"code\.npz: ") as caught:
        load_code(path)
    assert "allow_pickle" not in str(caught.value)


def test_an_npz_with_an_object_array_is_refused(tmp_path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, hx=np.array([{"a": 1}], dtype=object), hz=np.eye(2))
    with pytest.raises(CodeError, match="pickled objects"):
        load_code(path)
