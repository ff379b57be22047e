"""Seeded synthetic mallocGame instances.

* :func:`random_instance` — random lifetimes, sizes, uses and FLOPs: a program of ``num_ops``
  operations whose operations sit on both sides of the hardware's ridge point (some
  compute-bound, some memory-bound), so the cost model's ``max`` matters.
* :func:`tight_instance` — the packing game's test bed: a ``capacity × num_ops`` rectangle of
  the time × address plane cut into ``num_buffers`` rectangles by random guillotine cuts. Every
  schedule time is covered exactly, so the peak live bytes equal ``capacity`` and the layout the
  cuts came from reaches that height: the optimal packing height is exactly ``capacity``.

The same arguments and seed give the same instance (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import numpy as np
from rlsuite.envs.malloc.instances import DEFAULT_HARDWARE, HardwareProfile, Instance

GENERATORS = ("random", "tight")
_ALIGNMENT = 256  # bytes: synthetic sizes are multiples of this


def _check_sizes(num_buffers: int, num_ops: int) -> None:
    for name, value in (("num_buffers", num_buffers), ("num_ops", num_ops)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _flops_around_ridge(
    rng: np.random.Generator, inst_bytes: np.ndarray, hardware: HardwareProfile
) -> np.ndarray:
    """FLOPs per operation: arithmetic intensity log-uniform over [1/8, 8] × the ridge point
    ``flops_per_s / slow_bandwidth`` times the bytes it moves."""
    ridge = hardware.flops_per_s / hardware.slow_bandwidth
    intensity = ridge * np.exp2(rng.uniform(-3.0, 3.0, size=inst_bytes.shape))
    return np.round(intensity * inst_bytes)


def random_instance(
    num_buffers: int = 64,
    num_ops: int | None = None,
    seed: int = 0,
    *,
    hardware: HardwareProfile = DEFAULT_HARDWARE,
) -> Instance:
    """Buffers with random live ranges (mean length ``T/8``), log-uniform sizes from 1 KiB to
    1 MiB, a producer at ``lower``, a last reader at ``upper − 1`` and up to two more readers in
    between. ``num_ops`` defaults to ``num_buffers``."""
    num_ops = num_buffers if num_ops is None else num_ops
    _check_sizes(num_buffers, num_ops)
    rng = np.random.default_rng(seed)
    lower = rng.integers(0, num_ops, size=num_buffers)
    length = 1 + rng.geometric(min(1.0, 8.0 / num_ops), size=num_buffers)
    upper = np.minimum(lower + length, num_ops)
    size = _ALIGNMENT * np.round(np.exp2(rng.uniform(2.0, 12.0, size=num_buffers))).astype(np.int64)
    uses, ptr = [], [0]
    for lo, hi in zip(lower, upper, strict=True):
        readers = rng.integers(lo, hi, size=2) if hi - lo > 2 else np.empty(0, dtype=np.int64)
        ops = np.unique(np.concatenate([[lo, hi - 1], readers]))
        uses.append(ops)
        ptr.append(ptr[-1] + len(ops))
    use_op = np.concatenate(uses)
    use_bytes = np.repeat(size, np.diff(ptr))
    op_bytes = np.bincount(use_op, use_bytes, minlength=num_ops)
    return Instance(
        name=f"random-n{num_buffers}-t{num_ops}-s{seed}",
        ids=np.arange(num_buffers),
        lower=lower,
        upper=upper,
        size=size,
        use_ptr=np.array(ptr),
        use_op=use_op,
        use_bytes=use_bytes,
        num_ops=int(num_ops),
        op_flops=_flops_around_ridge(rng, op_bytes, hardware),
        hardware=hardware,
        source={"generator": "random", "seed": int(seed)},
    )


def tight_instance(
    num_buffers: int = 32,
    num_ops: int = 32,
    seed: int = 0,
    *,
    capacity: int = 1 << 20,
    hardware: HardwareProfile = DEFAULT_HARDWARE,
) -> tuple[Instance, np.ndarray]:
    """A guillotine cut of the ``capacity × num_ops`` rectangle into ``num_buffers`` buffers;
    returns the instance and the offsets (bytes) of the layout it was cut from, whose height is
    ``capacity`` — the optimum. Cuts fall on multiples of 256 bytes and on integer times; a piece
    too small to cut further in either direction is left whole (so ask for at most
    ``num_ops · capacity / 256`` buffers)."""
    _check_sizes(num_buffers, num_ops)
    if capacity % _ALIGNMENT or capacity < _ALIGNMENT:
        raise ValueError(f"capacity must be a positive multiple of {_ALIGNMENT}, got {capacity}")
    if num_buffers > num_ops * (capacity // _ALIGNMENT):
        raise ValueError(
            f"num_buffers={num_buffers} pieces cannot be cut from {num_ops} ops × {capacity} bytes"
        )
    rng = np.random.default_rng(seed)
    # pieces: (lower, upper, offset, size); cut the largest-area piece that can still be cut
    pieces = [(0, num_ops, 0, capacity)]
    while len(pieces) < num_buffers:
        areas = [(hi - lo) * size for lo, hi, _, size in pieces]
        lo, hi, offset, size = pieces.pop(int(np.argmax(areas)))
        can_time, can_space = hi - lo > 1, size > _ALIGNMENT
        if can_time and (not can_space or rng.random() < 0.5):
            cut = int(rng.integers(lo + 1, hi))
            pieces += [(lo, cut, offset, size), (cut, hi, offset, size)]
        else:
            cut = _ALIGNMENT * int(rng.integers(1, size // _ALIGNMENT))
            pieces += [(lo, hi, offset, cut), (lo, hi, offset + cut, size - cut)]
    order = rng.permutation(len(pieces))
    lower, upper, offset, size = (np.array(column) for column in zip(*pieces, strict=True))
    lower, upper, offset, size = lower[order], upper[order], offset[order], size[order]
    ends = [np.unique([lo, hi - 1]) for lo, hi in zip(lower, upper, strict=True)]
    use_op = np.concatenate(ends)
    ptr = np.concatenate([[0], np.cumsum([len(e) for e in ends])])
    use_bytes = np.repeat(size, np.diff(ptr))
    op_bytes = np.bincount(use_op, use_bytes, minlength=num_ops)
    inst = Instance(
        name=f"tight-n{num_buffers}-t{num_ops}-s{seed}",
        ids=np.arange(num_buffers),
        lower=lower,
        upper=upper,
        size=size,
        use_ptr=ptr,
        use_op=use_op,
        use_bytes=use_bytes,
        num_ops=int(num_ops),
        op_flops=_flops_around_ridge(rng, op_bytes, hardware),
        hardware=hardware,
        source={"generator": "tight", "seed": int(seed), "optimal_height": int(capacity)},
    )
    return inst, offset
