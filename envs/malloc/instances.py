"""mallocGame instances: an ML program's buffers, its operations and the memory they run on.

Source: Wang et al., "Optimizing Memory Mapping Using Deep Reinforcement Learning"
(DeepMind, arXiv 2305.07440), whose *mallocGame* maps the buffers of a compiled ML program onto
fast and slow memory; the packing variant is the dynamic storage allocation problem that
TelaMalloc and MiniMalloc solve.

**The program.** A schedule of ``T`` operations; schedule time ``t ∈ [0, T)`` is the index of
the ``t``-th operation. Operation ``t`` does ``op_flops[t]`` floating-point operations.

**Buffers.** Buffer ``b`` has a half-open live range ``[lower_b, upper_b)`` in schedule time,
a size ``size_b`` in bytes and a list of *uses*: the operations that read or write it, each
moving some number of bytes (its producer writes it, its readers read it; by default each use
moves the whole buffer). Two buffers whose live ranges overlap may not share an address.

**Cost model** (the form of XLA's memory-space-assignment cost analysis). A hardware profile
(:class:`HardwareProfile`) gives the compute rate ``F`` (FLOP/s) and the bandwidths of fast and
slow memory (bytes/s). Operation ``t`` takes

    time_t = max(op_flops[t] / F,  Σ_uses-at-t bytes / bw(memory of that buffer))   [seconds]

and the program takes ``Σ_t time_t``. With every buffer in slow memory this is
:attr:`Instance.slow_time`; a mapping's *time saved* is ``slow_time − program_time(fast)``.
A buffer's *benefit* is the time saved by putting it alone in fast memory, summed over its
producer and its uses; because ``max(c, ·)`` is convex, a buffer's saving given any other set
of fast buffers is at most its benefit.

**Files.** An instance is a CSV in the public MiniMalloc format (``id,lower,upper,size``, one
buffer per row, half-open ranges) with optional extra columns:

* ``uses`` — the operations that access the buffer, separated by ``;``, each ``op`` or
  ``op:bytes`` (bytes moved; ``op`` alone moves ``size``), ascending, each inside the live range.
  Without the column a buffer is written at ``lower`` and read at ``upper − 1``.
* ``benefit`` — seconds; when present it must agree with the cost model (it is written for
  other tools' use and checked on loading, never trusted).

and an optional JSON sidecar ``NAME.json`` beside ``NAME.csv``: ``{"format":
"rlsuite-malloc/1", "name", "num_ops", "op_flops": [T], "op_names": [T], "source": {...},
"hardware": {...}}``. Without the sidecar ``T = max(upper)``, every ``op_flops`` is 0 and the
hardware is :data:`DEFAULT_HARDWARE`. :func:`load_instance` validates everything and names the
bad row or field; :func:`save_instance` writes both files. The instances that ship with rlsuite
(training steps of torchvision models, extracted by ``scripts/extract_malloc_instance.py``) are
listed by :func:`shipped_instances` and loaded by name.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "rlsuite-malloc/1"
_REQUIRED_COLUMNS = ("id", "lower", "upper", "size")
_OPTIONAL_COLUMNS = ("uses", "benefit")


class InstanceError(ValueError):
    """A malformed instance file or inconsistent instance data."""


@dataclass(frozen=True)
class HardwareProfile:
    """Compute rate and memory bandwidths of the accelerator the program runs on.

    The default is illustrative: a TPU-v4-like chip (275 TFLOP/s, 1.2 TB/s of HBM as the slow
    memory) with an on-chip fast memory ten times faster than HBM. Only the ratios matter for the
    fraction of time saved.
    """

    name: str = "tpu-v4-like"
    flops_per_s: float = 275e12
    slow_bandwidth: float = 1.2e12  # bytes/s
    fast_bandwidth: float = 12e12  # bytes/s

    def __post_init__(self) -> None:
        for key in ("flops_per_s", "slow_bandwidth", "fast_bandwidth"):
            value = getattr(self, key)
            if type(value) not in (int, float) or not (math.isfinite(value) and value > 0):
                raise InstanceError(f"hardware.{key} must be a positive number, got {value!r}")
        if self.fast_bandwidth < self.slow_bandwidth:
            raise InstanceError(
                f"hardware.fast_bandwidth ({self.fast_bandwidth}) must be at least "
                f"slow_bandwidth ({self.slow_bandwidth})"
            )

    @classmethod
    def from_dict(cls, data: Any) -> HardwareProfile:
        if not isinstance(data, dict):
            raise InstanceError(f"hardware must be a JSON object, got {data!r}")
        allowed = {"name", "flops_per_s", "slow_bandwidth", "fast_bandwidth"}
        unknown = set(data) - allowed
        if unknown:
            raise InstanceError(
                f"hardware has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        return cls(**data)


DEFAULT_HARDWARE = HardwareProfile()


@dataclass(frozen=True, eq=False)
class Instance:
    """One program's buffers (``N``) and operations (``T``); arrays are read-only numpy.

    Uses are stored in CSR form: buffer ``b``'s uses are ``use_op[use_ptr[b]:use_ptr[b+1]]``
    (distinct, ascending operation indices) moving ``use_bytes[...]`` bytes each.
    """

    name: str
    ids: np.ndarray  # (N,) int64, the file's ids
    lower: np.ndarray  # (N,) int64
    upper: np.ndarray  # (N,) int64, exclusive
    size: np.ndarray  # (N,) int64, bytes
    use_ptr: np.ndarray  # (N + 1,) int64
    use_op: np.ndarray  # (U,) int64
    use_bytes: np.ndarray  # (U,) int64
    num_ops: int
    op_flops: np.ndarray  # (T,) float64
    hardware: HardwareProfile = DEFAULT_HARDWARE
    op_names: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("ids", "lower", "upper", "size", "use_ptr", "use_op", "use_bytes"):
            array = np.ascontiguousarray(getattr(self, name), dtype=np.int64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        flops = np.ascontiguousarray(self.op_flops, dtype=np.float64)
        flops.setflags(write=False)
        object.__setattr__(self, "op_flops", flops)
        validate(self)

    # -- sizes -----------------------------------------------------------------------------
    @property
    def num_buffers(self) -> int:
        return int(self.size.shape[0])

    @property
    def use_buffer(self) -> np.ndarray:
        """(U,) the buffer of each use."""
        return np.repeat(np.arange(self.num_buffers), np.diff(self.use_ptr))

    def live_bytes(self) -> np.ndarray:
        """(T,) bytes of the buffers live at each schedule time."""
        delta = np.zeros(self.num_ops + 1, dtype=np.int64)
        np.add.at(delta, self.lower, self.size)
        np.add.at(delta, self.upper, -self.size)
        return np.cumsum(delta)[:-1]

    @property
    def peak_live_bytes(self) -> int:
        """The most bytes live at once: a lower bound on any packing's height."""
        return int(self.live_bytes().max(initial=0))

    # -- the cost model --------------------------------------------------------------------
    @property
    def compute_time(self) -> np.ndarray:
        """(T,) seconds of compute per operation, ``op_flops / flops_per_s``."""
        return self.op_flops / self.hardware.flops_per_s

    def memory_time(self, in_fast: np.ndarray) -> np.ndarray:
        """(T,) seconds of memory traffic per operation for the boolean mapping ``in_fast``."""
        fast = np.asarray(in_fast, dtype=bool)[self.use_buffer]
        bandwidth = np.where(fast, self.hardware.fast_bandwidth, self.hardware.slow_bandwidth)
        return np.bincount(self.use_op, self.use_bytes / bandwidth, minlength=self.num_ops)

    def program_time(self, in_fast: np.ndarray | None = None) -> float:
        """Seconds: ``Σ_t max(compute_t, memory_t)`` with the buffers ``in_fast`` in fast memory."""
        if in_fast is None:
            in_fast = np.zeros(self.num_buffers, dtype=bool)
        return float(np.maximum(self.compute_time, self.memory_time(in_fast)).sum())

    @property
    def slow_time(self) -> float:
        """Seconds the program takes with every buffer in slow memory."""
        return self.program_time()

    @property
    def use_saving(self) -> np.ndarray:
        """(U,) seconds of memory time each use saves when its buffer is in fast memory."""
        hw = self.hardware
        return self.use_bytes * (1.0 / hw.slow_bandwidth - 1.0 / hw.fast_bandwidth)

    @property
    def benefit(self) -> np.ndarray:
        """(N,) seconds saved by putting each buffer alone in fast memory."""
        compute = self.compute_time
        memory = self.memory_time(np.zeros(self.num_buffers, dtype=bool))
        before = np.maximum(compute, memory)[self.use_op]
        after = np.maximum(compute[self.use_op], memory[self.use_op] - self.use_saving)
        return np.bincount(self.use_buffer, before - after, minlength=self.num_buffers)

    def mapping_order(self) -> np.ndarray:
        """The mapping game's arrival order (XLA's): decreasing memory-boundedness
        ``benefit / sqrt(size)``, ties by larger size, then longer lifetime, then file order."""
        lifetime = self.upper - self.lower
        return np.lexsort(
            (np.arange(self.num_buffers), -lifetime, -self.size, -self.benefit / np.sqrt(self.size))
        )

    def packing_order(self) -> np.ndarray:
        """The packing game's arrival order: decreasing size, ties by longer lifetime, then
        earlier start, then file order."""
        lifetime = self.upper - self.lower
        return np.lexsort((np.arange(self.num_buffers), self.lower, -lifetime, -self.size))

    def with_hardware(self, hardware: HardwareProfile) -> Instance:
        return replace(self, hardware=hardware)


def _fail(message: str) -> None:
    raise InstanceError(message)


def validate(inst: Instance) -> None:
    """Check shapes, ranges and uses; raise :class:`InstanceError` naming the bad buffer."""
    N, T = inst.ids.shape[0], inst.num_ops
    if not isinstance(T, (int, np.integer)) or T < 1:
        _fail(f"num_ops must be a positive int, got {T!r}")
    if N < 1:
        _fail("an instance needs at least one buffer")
    for name in ("lower", "upper", "size"):
        if getattr(inst, name).shape != (N,):
            _fail(f"{name} must have shape ({N},), got {getattr(inst, name).shape}")
    if inst.op_flops.shape != (T,):
        _fail(f"op_flops must have {T} entries (num_ops), got {inst.op_flops.shape[0]}")
    if not np.all(np.isfinite(inst.op_flops)) or np.any(inst.op_flops < 0):
        bad = int(np.flatnonzero(~(inst.op_flops >= 0))[0])
        _fail(f"op_flops[{bad}] = {inst.op_flops[bad]} must be a finite number >= 0")
    if inst.op_names and len(inst.op_names) != T:
        _fail(f"op_names must have {T} entries (num_ops), got {len(inst.op_names)}")
    if len(np.unique(inst.ids)) != N:
        values, counts = np.unique(inst.ids, return_counts=True)
        _fail(f"buffer id {int(values[counts > 1][0])} appears more than once")

    def check(condition: np.ndarray, what: str) -> None:
        if not np.all(condition):
            b = int(np.flatnonzero(~condition)[0])
            _fail(
                f"buffer id {int(inst.ids[b])}: {what} (lower={int(inst.lower[b])}, "
                f"upper={int(inst.upper[b])}, size={int(inst.size[b])}, num_ops={T})"
            )

    check(inst.ids >= 0, "id must be >= 0")
    check(inst.lower >= 0, "lower must be >= 0")
    check(inst.upper > inst.lower, "the live range [lower, upper) must be non-empty")
    check(inst.upper <= T, "upper must be <= num_ops")
    check(inst.size > 0, "size must be > 0 bytes")
    check(inst.size < 2**53, "size must be below 2**53 bytes (exact in float64)")
    ptr = inst.use_ptr
    if ptr.shape != (N + 1,) or ptr[0] != 0 or np.any(np.diff(ptr) < 0):
        _fail("use_ptr must be a non-decreasing (N + 1,) array starting at 0")
    if inst.use_op.shape != (int(ptr[-1]),) or inst.use_bytes.shape != inst.use_op.shape:
        _fail(f"use_op and use_bytes must have {int(ptr[-1])} entries")
    check(np.diff(ptr) > 0, "a buffer needs at least one use")
    owner = np.repeat(np.arange(N), np.diff(ptr))
    in_range = (inst.use_op >= inst.lower[owner]) & (inst.use_op < inst.upper[owner])
    check(np.bincount(owner, ~in_range, minlength=N) == 0, "every use must lie in [lower, upper)")
    ascending = np.ones(inst.use_op.shape, dtype=bool)
    ascending[1:] = (inst.use_op[1:] > inst.use_op[:-1]) | (owner[1:] != owner[:-1])
    check(np.bincount(owner, ~ascending, minlength=N) == 0, "uses must be distinct and ascending")
    check(np.bincount(owner, inst.use_bytes <= 0, minlength=N) == 0, "use bytes must be > 0")


# -- files -------------------------------------------------------------------------------------
# MiniMalloc's header aliases (google/minimalloc, converter.cc): an "end" column is inclusive.
_ALIASES = {"buffer": "id", "buffer_id": "id", "start": "lower", "begin": "lower", "end": "upper"}
_IGNORED_COLUMNS = ("offset",)  # a MiniMalloc solution; the games choose their own offsets
_MAX_EXACT = 2**53  # bytes and FLOPs are float64 in the batched core


def _parse_int(text: str, column: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InstanceError(
            f"{where}: column {column!r} must be an integer, got {text!r}"
        ) from None
    if abs(value) >= _MAX_EXACT:
        raise InstanceError(f"{where}: column {column!r} = {value} is too large (at most 2**53)")
    return value


def _parse_uses(text: str, size: int, where: str) -> list[tuple[int, int]]:
    uses = []
    for entry in text.split(";"):
        op, colon, moved = entry.strip().partition(":")
        if colon and not moved:
            raise InstanceError(f"{where}: use {entry!r} has ':' but no bytes after it")
        uses.append(
            (_parse_int(op, "uses", where), _parse_int(moved, "uses", where) if colon else size)
        )
    return uses


def _header(path: Path, fieldnames: Sequence[str] | None) -> tuple[list[str], bool]:
    """The canonical column names and whether ``upper`` came from an inclusive ``end``."""
    raw = [c.strip() for c in (fieldnames or [])]
    columns = [_ALIASES.get(c, c) for c in raw]
    allowed = _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS + ("alignment", "gaps", *_IGNORED_COLUMNS)
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in allowed]
    if missing or unknown or len(set(columns)) != len(columns):
        raise InstanceError(
            f"{path}: the header must have the columns {', '.join(_REQUIRED_COLUMNS)} (or "
            f"MiniMalloc's buffer/start/end), each once, and optionally "
            f"{', '.join(_OPTIONAL_COLUMNS)}; got {raw}"
        )
    return columns, "end" in raw


def load_instance(
    path: str | Path, sidecar: str | Path | None = None, *, hardware: HardwareProfile | None = None
) -> Instance:
    """Read ``NAME.csv`` and its sidecar ``NAME.json`` (if present, or ``sidecar=``); a shipped
    instance may be named instead of a path (see :func:`shipped_instances`). ``hardware``
    replaces the file's hardware profile (after the file's benefits are checked against it).

    MiniMalloc's own files load too: ``buffer``/``buffer_id`` for ``id``, ``start``/``begin``
    for ``lower``, an inclusive ``end`` for ``upper``, string ids (renumbered ``0..N−1``, the
    names kept in ``source["buffer_names"]``) and an ``offset`` column (ignored). Alignment
    constraints and gaps are not modelled: a file that uses them is refused."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and str(path) in shipped_instances():
        path = _shipped_path(str(path))
    if not path.is_file():
        raise InstanceError(
            f"instance file {str(path)!r} does not exist; give a CSV path or one of the shipped "
            f"instances: {', '.join(shipped_instances())}"
        )
    meta = _read_sidecar(Path(sidecar) if sidecar is not None else path.with_suffix(".json"))
    rows: list[dict[str, int]] = []
    names: list[str] = []
    uses: list[list[tuple[int, int]]] = []
    benefits: list[tuple[int, float, str]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            columns, inclusive_end = _header(path, next(reader, None))
            for fields in reader:
                where = f"{path}, line {reader.line_num}"
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(columns):
                    raise InstanceError(
                        f"{where}: {len(fields)} fields, the header has {len(columns)}"
                    )
                record = {c: f.strip() for c, f in zip(columns, fields, strict=True)}
                if record.get("alignment", "1") not in ("", "1") or record.get("gaps"):
                    raise InstanceError(
                        f"{where}: alignment constraints and gaps are not modelled by the mallocGame"
                    )
                values = {c: _parse_int(record[c], c, where) for c in ("lower", "upper", "size")}
                values["upper"] += inclusive_end
                names.append(record["id"])
                rows.append(values)
                if record.get("uses"):
                    uses.append(_parse_uses(record["uses"], values["size"], where))
                else:  # written by its producer at lower, read at upper - 1
                    ends = sorted({values["lower"], values["upper"] - 1})
                    uses.append([(op, values["size"]) for op in ends])
                if record.get("benefit"):
                    try:
                        benefits.append((len(rows) - 1, float(record["benefit"]), where))
                    except ValueError:
                        raise InstanceError(
                            f"{where}: benefit must be a number, got {record['benefit']!r}"
                        ) from None
    except UnicodeDecodeError as err:
        raise InstanceError(
            f"{path}: not a text CSV (byte {err.start} is not UTF-8: {err.reason}); a MiniMalloc "
            "instance is a UTF-8 CSV with the header id,lower,upper,size[,uses,benefit]"
        ) from err
    if not rows:
        raise InstanceError(f"{path}: no buffers (the file has a header but no rows)")
    source = dict(meta.get("source", {}))
    try:
        ids = np.array([int(name) for name in names])
    except ValueError:  # MiniMalloc allows names such as "b1"
        ids = np.arange(len(names))
        source["buffer_names"] = names
    num_ops = meta.get("num_ops", max(r["upper"] for r in rows))
    try:
        inst = Instance(
            name=str(meta.get("name", path.stem)),
            ids=ids,
            lower=np.array([r["lower"] for r in rows]),
            upper=np.array([r["upper"] for r in rows]),
            size=np.array([r["size"] for r in rows]),
            use_ptr=np.concatenate([[0], np.cumsum([len(u) for u in uses])]),
            use_op=np.array([op for u in uses for op, _ in u], dtype=np.int64),
            use_bytes=np.array([moved for u in uses for _, moved in u], dtype=np.int64),
            num_ops=num_ops,
            op_flops=np.asarray(meta.get("op_flops", np.zeros(num_ops)), dtype=np.float64),
            hardware=HardwareProfile.from_dict(meta.get("hardware", {})),
            op_names=tuple(meta.get("op_names", ())),
            source=source,
        )
    except InstanceError as err:
        raise InstanceError(f"{path}: {err}") from None
    computed = inst.benefit
    for index, value, where in benefits:
        if not math.isclose(value, computed[index], rel_tol=1e-6, abs_tol=1e-15):
            raise InstanceError(
                f"{where}: benefit {value:.6g} s disagrees with the cost model's "
                f"{computed[index]:.6g} s (from the uses and the file's hardware profile)"
            )
    return inst if hardware is None else inst.with_hardware(hardware)


def _read_sidecar(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InstanceError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise InstanceError(f"{path}: the sidecar must be a JSON object")
    allowed = {"format", "name", "num_ops", "op_flops", "op_names", "source", "hardware"}
    unknown = set(meta) - allowed
    if unknown:
        raise InstanceError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    if meta.get("format", FORMAT) != FORMAT:
        raise InstanceError(f"{path}: format {meta['format']!r} is not {FORMAT!r}")
    num_ops = meta.get("num_ops")
    if "num_ops" in meta and (type(num_ops) is not int or num_ops < 1):
        raise InstanceError(f"{path}: num_ops must be a positive int, got {num_ops!r}")
    if "op_flops" in meta:
        flops = meta["op_flops"]
        if "num_ops" not in meta:
            raise InstanceError(f"{path}: op_flops needs num_ops")
        if not isinstance(flops, list) or not all(
            type(f) in (int, float) and 0 <= f < _MAX_EXACT for f in flops
        ):
            raise InstanceError(f"{path}: op_flops must be a list of numbers in [0, 2**53)")
    names = meta.get("op_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InstanceError(f"{path}: op_names must be a list of strings")
    if not isinstance(meta.get("source", {}), dict):
        raise InstanceError(f"{path}: source must be a JSON object")
    return meta


def save_instance(inst: Instance, path: str | Path) -> None:
    """Write ``inst`` as ``path`` (CSV with ``uses`` and ``benefit``) and its JSON sidecar."""
    path = Path(path)
    benefit = inst.benefit
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*_REQUIRED_COLUMNS, "uses", "benefit"])
        for b in range(inst.num_buffers):
            lo, hi = inst.use_ptr[b], inst.use_ptr[b + 1]
            uses = ";".join(
                str(op) if moved == inst.size[b] else f"{op}:{moved}"
                for op, moved in zip(inst.use_op[lo:hi], inst.use_bytes[lo:hi], strict=True)
            )
            writer.writerow(
                [
                    inst.ids[b],
                    inst.lower[b],
                    inst.upper[b],
                    inst.size[b],
                    uses,
                    repr(float(benefit[b])),
                ]
            )
    meta = {
        "format": FORMAT,
        "name": inst.name,
        "num_ops": inst.num_ops,
        "op_flops": [int(f) if float(f).is_integer() else float(f) for f in inst.op_flops],
        "hardware": {
            "name": inst.hardware.name,
            "flops_per_s": inst.hardware.flops_per_s,
            "slow_bandwidth": inst.hardware.slow_bandwidth,
            "fast_bandwidth": inst.hardware.fast_bandwidth,
        },
        "source": inst.source,
    }
    if inst.op_names:
        meta["op_names"] = list(inst.op_names)
    path.with_suffix(".json").write_text(json.dumps(meta) + "\n")


# -- shipped instances -------------------------------------------------------------------------
def _data_dir() -> Any:
    return resources.files("rlsuite.envs.malloc") / "data"


def shipped_instances() -> list[str]:
    """Names of the instances that ship with rlsuite (load them with ``load_instance(name)``)."""
    folder = _data_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv"))


def _shipped_path(name: str) -> Path:
    return Path(str(_data_dir() / f"{name}.csv"))
