"""Run directories, metrics logs and checkpoints that never execute code when loaded.

A checkpoint is one ``torch.save`` file holding a plain dict::

    {"format": "rlsuite-checkpoint", "version": 1,
     "metadata": "<JSON text>", "tensors": {name: CPU tensor}}

so it loads with ``torch.load(path, weights_only=True)``: tensors and plain data only, never
arbitrary pickled objects. Every file is written atomically (a temporary file in the same
directory, ``fsync``, then ``os.replace``), so a crash or a kill mid-write leaves the previous
file intact.

A training run lives in a :class:`RunDir`::

    config.yaml                       the resolved experiment config
    meta.json                         rlsuite version, env id, agent, creation time, seeds
    metrics.jsonl                     {"step": int, "time": float, <scalar>: float | null, ...}
    tb/                               TensorBoard event files
    checkpoints/step_000000012345.pt  the last few checkpoints
    checkpoints/latest                the latest checkpoint's file name
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickletools
import re
import secrets
import socket
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import torch

from rlsuite.config import config_to_dict, yaml_dump, yaml_load

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "RunDir",
    "RunDirError",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "rlsuite-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file and the problem."""


class RunDirError(ValueError):
    """A run directory is missing, not a run directory, or would be overwritten."""


# -- atomic files --------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(file)`` so that readers see the old or the new file, whole.

    The temporary file is ``.<name>.<random>.tmp`` in the same directory (so it never matches
    ``step_*.pt``) and is removed if anything fails.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda file: file.write(text.encode("utf-8")))


# -- checkpoints ---------------------------------------------------------------------------------

_JSON_ALLOWED = "None, bool, int, float, str, lists and dicts with string keys"


def _jsonable(value: Any, key: str) -> Any:
    """``value`` as plain JSON data (numpy scalars become Python numbers), or CheckpointError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(
                    f"{key}: key {k!r} ({type(k).__name__}) is not a string; "
                    "checkpoint metadata dicts need string keys (JSON)"
                )
            out[k] = _jsonable(v, f"{key}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        raise CheckpointError(
            f"{key}: a {type(value).__module__}.{type(value).__name__} is not allowed in "
            "checkpoint metadata (JSON only); put arrays in the tensors mapping instead"
        )
    if isinstance(value, np.generic):
        return _jsonable(value.item(), key)
    raise CheckpointError(
        f"{key}: {type(value).__name__} value {value!r:.80} is not JSON-serialisable; "
        f"checkpoint metadata allows {_JSON_ALLOWED}"
    )


def _checkpoint_tensor(name: Any, value: Any) -> torch.Tensor:
    if not isinstance(name, str):
        raise CheckpointError(
            f"tensor name {name!r} ({type(name).__name__}) is not a string; "
            "checkpoint tensors are a mapping from str names to tensors"
        )
    if isinstance(value, np.ndarray):
        try:
            value = torch.from_numpy(np.array(value, copy=True, order="C"))
        except TypeError as err:
            raise CheckpointError(
                f"tensors[{name!r}]: numpy array of dtype {value.dtype} cannot become a tensor "
                f"({err})"
            ) from None
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(
            f"tensors[{name!r}]: expected a torch.Tensor or numpy array, got "
            f"{type(value).__name__}; put plain values in the metadata"
        )
    tensor = value.detach().cpu()
    if tensor.layout != torch.strided:
        return tensor
    full = tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
    if not (tensor.is_contiguous() and full and tensor.storage_offset() == 0):
        tensor = tensor.clone(memory_format=torch.contiguous_format)  # do not save a whole base
    return tensor


def save_checkpoint(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> Path:
    """Write tensors and JSON metadata to ``path`` atomically; returns the path.

    Tensors are stored detached, on the CPU and contiguous (numpy arrays are converted);
    ``metadata`` must be JSON data (ints of any size are fine, arrays are not). The parent
    directory is created if needed.
    """
    path = Path(path)
    if not isinstance(tensors, Mapping):
        raise CheckpointError(f"{path}: tensors must be a mapping, got {type(tensors).__name__}")
    if not isinstance(metadata, Mapping):
        raise CheckpointError(f"{path}: metadata must be a mapping, got {type(metadata).__name__}")
    try:
        meta_text = json.dumps(_jsonable(metadata, "metadata"))
        stored = {name: _checkpoint_tensor(name, value) for name, value in tensors.items()}
    except CheckpointError as err:
        raise CheckpointError(f"cannot save checkpoint {path}: {err}") from None
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "metadata": meta_text,
        "tensors": stored,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda file: torch.save(payload, file))
    return path


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


# What a weights-only torch file may name: tensor rebuilders and storages, OrderedDict.
_SAFE_GLOBAL = re.compile(r"^(torch\.|collections\.OrderedDict$|builtins\.(set|frozenset)$)")
_STRING_OPS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)


def _pickle_globals(data: bytes, limit: int = 8) -> list[str]:
    """The ``module.name`` globals the pickles in ``data`` would import (read with
    ``pickletools``, never executed); up to ``limit`` pickles in a row (torch's legacy format
    writes several). A stream that stops parsing ends the scan."""
    found: list[str] = []
    stream = io.BytesIO(data)
    for _ in range(limit):
        if stream.tell() >= len(data):
            break
        strings: list[str] = []
        try:
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name in _STRING_OPS and isinstance(arg, (str, bytes)):
                    text = arg.decode("latin-1") if isinstance(arg, bytes) else arg
                    strings = [*strings[-1:], text]
                elif opcode.name == "GLOBAL" and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
                    found.append(".".join(strings))
        except Exception:  # not (or no longer) a pickle: what was read so far counts
            break
    return found


def _inspect_payload(path: Path) -> tuple[str, list[str]]:
    """``(what the file is, the unsafe pickled globals in it)``, read without unpickling:
    a torch zip archive (its ``data.pkl``), a numpy ``.npz`` (object arrays are pickles), a
    raw pickle or torch's legacy format, or neither."""
    try:
        head = path.read_bytes()
    except OSError as err:
        return f"an unreadable file ({err})", []
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                pickles = [n for n in names if n.endswith(".pkl")]
                if pickles:
                    found = [g for n in pickles for g in _pickle_globals(archive.read(n))]
                    unsafe = [g for g in found if not _SAFE_GLOBAL.match(g)]
                    return "a torch archive", sorted(set(unsafe))
                arrays = [n for n in names if n.endswith(".npy")]
                if arrays:
                    objects = [n for n in arrays if b"'|O'" in archive.read(n)[:256]]
                    if objects:
                        return "a numpy .npz archive", [f"object array {n}" for n in objects]
                    return "a numpy .npz archive of arrays, not a torch file", []
        except (zipfile.BadZipFile, OSError, KeyError):
            return "a damaged zip archive (truncated or corrupt)", []
        return "a zip archive that is not a torch file", []
    if head[:1] == b"\x80":  # a pickle (protocol >= 2): a raw pickle or torch's legacy format
        unsafe = [g for g in _pickle_globals(head) if not _SAFE_GLOBAL.match(g)]
        return "a pickle stream", sorted(set(unsafe))
    return "neither a torch archive nor a pickle", []


def _torch_reason(err: BaseException) -> str:
    """torch's error, first line only, without its advice to load with weights_only=False."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    if "weights_only" in line or "Weights only" in line:
        return "torch's weights-only loader refused it"
    return line.split(". ")[0][:200]


def load_checkpoint(
    path: str | Path, *, map_location: str | torch.device | None = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, metadata)`` from a checkpoint written by :func:`save_checkpoint`.

    Loads with ``torch.load(weights_only=True)``: a file that would need arbitrary objects
    unpickled is refused, never executed.
    """
    path = Path(path)
    expected = (
        f"expected an rlsuite checkpoint (format {CHECKPOINT_FORMAT!r}, "
        f"version <= {CHECKPOINT_VERSION})"
    )
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} not found")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} is not a file; {expected}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes); {expected}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError, UnpicklingError...
        kind, objects = _inspect_payload(path)
        if objects:
            raise CheckpointError(
                f"{str(path)!r} is not an rlsuite checkpoint: it holds pickled Python objects "
                f"({', '.join(objects[:5])}{', ...' if len(objects) > 5 else ''}) in {kind} "
                "that will not be unpickled, since unpickling runs arbitrary code (rlsuite "
                f"never loads such a file); {expected}"
            ) from None
        if kind.startswith("a numpy"):
            raise CheckpointError(
                f"{str(path)!r} is not an rlsuite checkpoint: it is {kind}; {expected}"
            ) from None
        refused = _UNSUPPORTED_GLOBAL.search(str(err))
        if refused is not None:  # torch named a global our scan did not see
            raise CheckpointError(
                f"{str(path)!r} is not an rlsuite checkpoint: it holds a pickled object "
                f"({refused.group(1)}) that will not be unpickled, since unpickling runs "
                f"arbitrary code; {expected}"
            ) from None
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read (truncated, corrupt or not a torch file: "
            f"{kind}; {_torch_reason(err)}); {expected}"
        ) from None

    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        found = (
            f"a dict with keys {sorted(map(str, data))}"
            if isinstance(data, dict)
            else (f"a {type(data).__name__}")
        )
        raise CheckpointError(
            f"{str(path)!r} is not an rlsuite checkpoint: it holds {found} without the "
            f"'format': {CHECKPOINT_FORMAT!r} marker; {expected}"
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has an invalid version {version!r}; {expected}"
        )
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {version}, newer than this rlsuite "
            f"reads (version <= {CHECKPOINT_VERSION}); upgrade rlsuite to load it"
        )
    tensors = data.get("tensors")
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: 'tensors' is not a mapping from names to tensors"
        )
    try:
        metadata = json.loads(data.get("metadata"))
    except (TypeError, ValueError):
        metadata = None
    if not isinstance(metadata, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is damaged: 'metadata' is not the JSON text of a mapping"
        )
    return tensors, metadata


# -- run directories -----------------------------------------------------------------------------

_STEP_FILE = re.compile(r"^step_([0-9]{12,})\.pt$")


def _step_of(path: Path) -> int | None:
    match = _STEP_FILE.match(path.name)
    return int(match.group(1)) if match else None


def _json_scalar(key: str, value: Any) -> int | float | None:
    """A metric value for ``metrics.jsonl``: ints stay ints, NaN and infinities become None."""
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        size = value.numel() if isinstance(value, torch.Tensor) else np.size(value)
        if size != 1:
            shape = tuple(value.shape)
            raise ValueError(f"metric {key!r}: expected a scalar, got an array of shape {shape}")
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"metric {key!r}: expected a number, got {type(value).__name__} {value!r:.80}"
        ) from None
    return number if math.isfinite(number) else None


class RunDir:
    """A training run's directory: config, metadata, metrics, TensorBoard events, checkpoints.

    Make one with :meth:`create` (a new run) or :meth:`open` (an existing run, e.g. to resume
    or evaluate). It is a context manager; :meth:`close` closes the metrics file and the
    TensorBoard writer.
    """

    CONFIG = "config.yaml"
    META = "meta.json"
    METRICS = "metrics.jsonl"
    TENSORBOARD = "tb"
    CHECKPOINTS = "checkpoints"
    LATEST = "latest"
    LOCK = "lock"

    def __init__(self, path: Path, config: dict[str, Any], meta: dict[str, Any]) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self.path = path
        self.config = config
        self.meta = meta
        self._metrics_file: IO[str] | None = None
        self._writer: Any = None  # torch.utils.tensorboard.SummaryWriter, made on first log
        self._purge_step: int | None = None
        self._clock_start = time.monotonic()
        self._time_offset = 0.0
        self._locked = False

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        config: Mapping[str, Any],
        meta: Mapping[str, Any],
        *,
        exist_ok: bool = False,
    ) -> RunDir:
        """A new run directory holding ``config.yaml`` and ``meta.json``, locked by this
        process (see :meth:`acquire_lock`) until :meth:`close`.

        A non-empty existing directory is refused unless ``exist_ok``, and so is a path under a
        regular file. The directory is made atomically (``mkdir`` without ``exist_ok``) and
        claimed with the lock file, so of two processes creating the same run at once exactly
        one succeeds. ``meta`` gains a ``created`` time (ISO 8601, UTC) unless it has one.
        """
        path = Path(path)
        cls.check_new(path, exist_ok=exist_ok)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            pass  # an existing (empty, or exist_ok) directory: claimed by the lock below
        except OSError as err:
            raise RunDirError(f"run directory {str(path)!r} cannot be created: {err}") from None
        claimed = cls(path, {}, {})
        claimed.acquire_lock()
        try:
            cls.check_new(path, exist_ok=exist_ok)  # e.g. filled by another process meanwhile
        except RunDirError:
            claimed.release_lock()
            raise
        config_dict = config_to_dict(config)
        meta_dict = dict(meta)
        meta_dict.setdefault("created", _now())
        try:
            meta_text = json.dumps(meta_dict, indent=2) + "\n"
        except (TypeError, ValueError) as err:
            raise RunDirError(
                f"run metadata for {str(path)!r} is not JSON-serialisable: {err}"
            ) from None
        try:
            (path / cls.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
            _atomic_write_text(path / cls.CONFIG, yaml_dump(config_dict))
            _atomic_write_text(path / cls.META, meta_text)
        except BaseException:
            claimed.release_lock()
            raise
        run = cls(path, config_dict, meta_dict)
        run._locked = True
        return run

    @classmethod
    def check_new(cls, path: str | Path, *, exist_ok: bool = False) -> None:
        """Refuse (:class:`RunDirError`) a path that cannot become a new run directory: a
        regular file, a path under a regular file, or a non-empty directory (unless
        ``exist_ok``). Nothing is created; ``rlsuite train`` calls it before any work."""
        path = Path(path)
        for ancestor in [path, *path.parents]:
            if ancestor.exists() and not ancestor.is_dir():
                what = (
                    "exists and is not a directory"
                    if ancestor == path
                    else (f"is under {str(ancestor)!r}, which is a file, not a directory")
                )
                raise RunDirError(f"run directory {str(path)!r} {what}")
        if path.is_dir() and not exist_ok:
            entries = [p for p in path.iterdir() if p.name != cls.LOCK]
            if entries or not _is_mine_or_none(_lock_holder(path / cls.LOCK)):
                raise RunDirError(
                    f"run directory {str(path)!r} already exists and is not empty; continue "
                    "that run with --resume, or choose another --run-dir"
                )

    # -- the lock ------------------------------------------------------------------------------
    def acquire_lock(self, *, take_over: bool = False) -> None:
        """Take ``RUN_DIR/lock`` (JSON naming this process's pid and host), so that no second
        training process writes this run at the same time: a lock held by a running process
        is a :class:`RunDirError` naming it (``--resume`` while the run is still going); a
        lock left by a process that no longer runs (a kill, a crash) is taken over, and with
        ``take_over`` any lock is (for a scheduler that knows the holder is gone, e.g. Ray Tune
        retrying a trial whose node died)."""
        lock = self.path / self.LOCK
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                holder = _lock_holder(lock)
                if holder and _is_mine_or_none(holder):
                    self._locked = True
                    return
                if not take_over and (holder is None or not _lock_is_stale(lock, holder)):
                    who = (
                        f"process {holder.get('pid')} on {holder.get('host')} (since "
                        f"{holder.get('since')})"
                        if holder
                        else "another process"
                    )
                    raise RunDirError(
                        f"run directory {str(self.path)!r} is in use by {who}: a training run "
                        f"is still going; wait for it to end or stop it (if no such process "
                        f"runs, delete {lock})"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()  # stale: its process is gone
                continue
            except OSError as err:
                raise RunDirError(f"cannot lock run directory {str(self.path)!r}: {err}") from None
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({**_this_process(), "since": _now()}, file)
            self._locked = True
            return
        raise RunDirError(f"run directory {str(self.path)!r}: could not take {lock}")

    def release_lock(self) -> None:
        """Remove the lock if this object holds it (done by :meth:`close`)."""
        if self._locked:
            lock = self.path / self.LOCK
            if _is_mine_or_none(_lock_holder(lock)):
                with contextlib.suppress(OSError):
                    lock.unlink()
            self._locked = False

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (one with a ``config.yaml``)."""
        path = Path(path)
        config_path = path / cls.CONFIG
        if not path.is_dir():
            raise RunDirError(f"run directory {str(path)!r} not found")
        if not config_path.is_file():
            raise RunDirError(
                f"{str(path)!r} is not an rlsuite run directory: it has no {cls.CONFIG} "
                "(expected the --run-dir of `rlsuite train`)"
            )
        try:
            config = yaml_load(config_path.read_text(encoding="utf-8"))
        except Exception as err:  # yaml.YAMLError, OSError, UnicodeDecodeError
            raise RunDirError(f"{config_path} cannot be read: {err}") from None
        if not isinstance(config, dict):
            raise RunDirError(
                f"{config_path} does not hold a mapping (got {type(config).__name__})"
            )
        meta: Any = {}
        meta_path = path / cls.META
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise RunDirError(f"{meta_path} cannot be read: {err}") from None
            if not isinstance(meta, dict):
                raise RunDirError(f"{meta_path} does not hold a JSON object")
        run = cls(path, config, meta)
        try:
            rows = run.read_metrics()
        except RunDirError as err:  # the run is still usable (evaluation needs no metrics)
            warnings.warn(f"{err}; the run's time offset restarts at 0", stacklevel=2)
            rows = []
        if rows and isinstance(rows[-1].get("time"), (int, float)):
            run._time_offset = float(rows[-1]["time"])
        return run

    # -- paths -----------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / self.TENSORBOARD

    def checkpoint_path(self, step: int) -> Path:
        """``checkpoints/step_<step:012d>.pt``."""
        return self.checkpoint_dir / f"step_{step:012d}.pt"

    # -- metrics ---------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self._time_offset + (time.monotonic() - self._clock_start)

    def _tensorboard(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self._writer = SummaryWriter(
                log_dir=str(self.tensorboard_dir), purge_step=self._purge_step, flush_secs=30
            )
        return self._writer

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append ``{"step", "time", **metrics}`` to ``metrics.jsonl`` and to TensorBoard.

        ``time`` is seconds of run time (continuing across resumes); NaN and infinities are
        written as ``null`` in the JSON lines (TensorBoard gets the float as is).
        """
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"log_metrics: step must be a non-negative int, got {step!r}")
        row: dict[str, Any] = {"step": step, "time": round(self._elapsed(), 6)}
        for key, value in metrics.items():
            if not isinstance(key, str):
                raise ValueError(f"metric names must be strings, got {key!r}")
            if key in ("step", "time"):
                raise ValueError(f"metric name {key!r} is reserved (every row has step and time)")
            row[key] = _json_scalar(key, value)
        if self._metrics_file is None:
            self._metrics_file = open(self.metrics_path, "a", encoding="utf-8")
        self._metrics_file.write(json.dumps(row, allow_nan=False) + "\n")
        self._metrics_file.flush()
        writer = self._tensorboard()
        for key, value in metrics.items():
            number = row[key]
            writer.add_scalar(key, float(value) if number is None else number, step)

    def _metric_lines(self) -> Iterator[tuple[int, str, dict[str, Any] | None]]:
        """``(line number, text, row)`` per line; row is None for a torn last line."""
        if not self.metrics_path.exists():
            return
        text = self.metrics_path.read_text(encoding="utf-8")
        lines = text.split("\n")
        complete = text.endswith("\n")
        if complete:
            lines.pop()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                if number == len(lines) and not complete:
                    yield number, line, None  # a write cut short by a crash
                    continue
                raise RunDirError(
                    f"{self.metrics_path}:{number}: not a metrics row (expected a JSON object "
                    f"with an int 'step'): {line[:80]!r}"
                )
            yield number, line, row

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every row of ``metrics.jsonl`` (a last line cut short by a crash is skipped)."""
        return [row for _, _, row in self._metric_lines() if row is not None]

    def truncate_metrics(self, after_step: int) -> None:
        """Drop rows with ``step > after_step`` (and a torn last line), for resuming.

        TensorBoard events at later steps are hidden the same way (``purge_step``), so a resumed
        run's logs equal an uninterrupted run's.
        """
        self._close_metrics()
        kept = [
            line
            for _, line, row in self._metric_lines()
            if row is not None and row["step"] <= after_step
        ]
        if self.metrics_path.exists():
            _atomic_write_text(self.metrics_path, "".join(line + "\n" for line in kept))
        if kept:
            last_time = json.loads(kept[-1]).get("time")
            if isinstance(last_time, (int, float)):
                self._time_offset = float(last_time)
                self._clock_start = time.monotonic()
        self._purge_step = after_step + 1
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(
        self,
        step: int,
        tensors: Mapping[str, torch.Tensor],
        metadata: Mapping[str, Any],
        *,
        keep: int = 3,
    ) -> Path:
        """Write ``checkpoints/step_<step>.pt`` and point ``latest`` at it, both atomically.

        ``metadata`` gains ``"step": step``. Afterwards only the ``keep`` checkpoints with the
        highest steps are kept; the one just written is never deleted.
        """
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise CheckpointError(f"save_checkpoint: step must be a non-negative int, got {step!r}")
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise CheckpointError(f"save_checkpoint: keep must be an int >= 1, got {keep!r}")
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = save_checkpoint(self.checkpoint_path(step), tensors, {**metadata, "step": step})
        _atomic_write_text(self.checkpoint_dir / self.LATEST, path.name + "\n")
        self._prune(path, keep)
        return path

    def _step_files(self) -> list[tuple[int, Path]]:
        if not self.checkpoint_dir.is_dir():
            return []
        found = [(_step_of(p), p) for p in self.checkpoint_dir.iterdir() if p.is_file()]
        return sorted((step, p) for step, p in found if step is not None)

    def _prune(self, current: Path, keep: int) -> None:
        files = self._step_files()
        retained = {p for _, p in files[-keep:]} | {current}
        for _, p in files:
            if p not in retained:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        for leftover in self.checkpoint_dir.glob(".*.tmp"):  # from writes cut short by a kill
            with contextlib.suppress(OSError):
                leftover.unlink()

    def checkpoint_files(self) -> list[Path]:
        """Every ``checkpoints/step_*.pt`` file, lowest step first (loadable or not)."""
        return [path for _, path in self._step_files()]

    def find_checkpoint(self) -> tuple[Path | None, list[str]]:
        """``(checkpoint, skipped)``: the checkpoint named in ``checkpoints/latest`` or, if that
        is missing or does not load, the highest-step checkpoint that loads, and one message per
        checkpoint file skipped on the way (naming the file and why it does not load).

        ``(None, [])`` when the run has no checkpoint file at all; a :class:`CheckpointError`
        when it has some but none of them loads (never a silent "no checkpoint")."""
        latest = self.checkpoint_dir / self.LATEST
        named: Path | None = None
        with contextlib.suppress(OSError, UnicodeDecodeError):
            name = latest.read_text(encoding="utf-8").strip()
            if _STEP_FILE.match(name) and (self.checkpoint_dir / name).is_file():
                named = self.checkpoint_dir / name
        candidates = [named] if named is not None else []
        candidates += [p for _, p in reversed(self._step_files()) if p != named]
        skipped: list[str] = []
        for path in candidates:
            try:
                load_checkpoint(path)
            except CheckpointError as err:
                skipped.append(str(err))
                continue
            return path, skipped
        if candidates:
            raise CheckpointError(
                f"run directory {str(self.path)!r} has {len(candidates)} checkpoint file(s) but "
                "none of them loads: " + "; ".join(skipped)
            )
        return None, []

    def check_checkpoint(self, path: Path, meta: Mapping[str, Any]) -> None:
        """Refuse (:class:`CheckpointError`) a checkpoint of another agent or env than this
        run's ``config.yaml`` names (e.g. a file copied in from another run)."""
        agent = (self.config.get("agent") or {}).get("name")
        env = self.config.get("env") or {}
        found = {"agent": meta.get("agent"), "env": meta.get("env_id")}
        wanted = {"agent": agent, "env": env.get("id")}
        saved_env = (meta.get("experiment") or {}).get("env")
        if isinstance(saved_env, Mapping):
            found["env.kwargs"] = saved_env.get("kwargs", {})
            wanted["env.kwargs"] = env.get("kwargs", {})
        for key, value in found.items():
            if value != wanted[key]:
                raise CheckpointError(
                    f"checkpoint {str(path)!r} is not this run's: its {key} is {value!r}, but "
                    f"{self.path / self.CONFIG} has {wanted[key]!r}; refusing to use it"
                )

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint named in ``checkpoints/latest``; if that is missing or unreadable,
        the highest-step checkpoint that loads, with a warning naming each skipped file; None
        when there is no checkpoint file. Checkpoint files of which none loads are a
        :class:`CheckpointError` (see :meth:`find_checkpoint`)."""
        path, skipped = self.find_checkpoint()
        for message in skipped:
            warnings.warn(f"skipped a checkpoint that does not load: {message}", stacklevel=2)
        return path

    # -- closing ---------------------------------------------------------------------------------
    def _close_metrics(self) -> None:
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file = None

    def close(self) -> None:
        """Close the metrics file, flush and close the TensorBoard writer, release the lock."""
        self.release_lock()
        self._close_metrics()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _is_mine_or_none(holder: Mapping[str, Any] | None) -> bool:
    me = _this_process()
    return holder is None or (holder.get("pid"), holder.get("host")) == (me["pid"], me["host"])


def _lock_holder(lock: Path) -> dict[str, Any] | None:
    """The lock's ``{"pid", "host"}``; ``{}`` for an unreadable one; None when there is none."""
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {"pid": data.get("pid"), "host": data.get("host")} | (
        {"since": data["since"]} if "since" in data else {}
    )


def _lock_is_stale(lock: Path, holder: Mapping[str, Any]) -> bool:
    """Whether the lock's process is gone: on this host, no process has its pid; an
    unreadable lock older than a minute (a crash between creating and writing it)."""
    pid = holder.get("pid")
    if not holder:
        with contextlib.suppress(OSError):
            return time.time() - lock.stat().st_mtime > 60
        return True
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False  # another machine's process: it cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists
        return False
    return False
