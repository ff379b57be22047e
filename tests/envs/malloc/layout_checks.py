"""Independent checks of a final mallocGame layout: plain numpy over the instance's rows,
sharing nothing with the batched core."""

from __future__ import annotations

import numpy as np
from rlsuite.envs.malloc.instances import Instance


def overlapping_pairs(inst: Instance, offsets: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of placed buffers that share both schedule time and addresses."""
    lo, hi, size = inst.lower, inst.upper, inst.size
    placed = offsets >= 0
    in_time = (lo[:, None] < hi[None, :]) & (lo[None, :] < hi[:, None])
    in_space = (offsets[:, None] < offsets[None, :] + size[None, :]) & (
        offsets[None, :] < offsets[:, None] + size[:, None]
    )
    clash = np.triu(in_time & in_space & placed[:, None] & placed[None, :], k=1)
    return [(int(a), int(b)) for a, b in zip(*np.nonzero(clash), strict=True)]


def fraction_of_time_saved(inst: Instance, offsets: np.ndarray) -> float:
    """The cost model evaluated from scratch: each use's bytes over its memory's bandwidth,
    summed per operation, then ``max(compute, memory)`` per operation."""
    hw = inst.hardware
    slow = np.zeros(inst.num_ops)
    mapped = np.zeros(inst.num_ops)
    for b in range(inst.num_buffers):
        bandwidth = hw.fast_bandwidth if offsets[b] >= 0 else hw.slow_bandwidth
        for u in range(inst.use_ptr[b], inst.use_ptr[b + 1]):
            slow[inst.use_op[u]] += inst.use_bytes[u] / hw.slow_bandwidth
            mapped[inst.use_op[u]] += inst.use_bytes[u] / bandwidth
    compute = inst.op_flops / hw.flops_per_s
    total_slow = np.maximum(compute, slow).sum()
    return float((total_slow - np.maximum(compute, mapped).sum()) / total_slow)


def candidate_offsets(
    inst: Instance, offsets: np.ndarray, buffer: int, capacity: float | None
) -> list[float]:
    """Offsets where ``buffer`` fits among the placed buffers, drawn from offset 0 and the top
    edges of placed, time-overlapping buffers; ascending."""
    lo, hi, size = inst.lower, inst.upper, inst.size
    others = [
        p
        for p in range(inst.num_buffers)
        if offsets[p] >= 0 and p != buffer and lo[p] < hi[buffer] and lo[buffer] < hi[p]
    ]
    fits = []
    for x in sorted({0.0, *(offsets[p] + size[p] for p in others)}):
        top = x + size[buffer]
        inside = capacity is None or top <= capacity
        if inside and all(top <= offsets[p] or x >= offsets[p] + size[p] for p in others):
            fits.append(float(x))
    return fits


def check_final_layout(inst: Instance, offsets: np.ndarray, capacity: float | None) -> None:
    """Every buffer decided, no overlaps, everything inside the capacity (mapping)."""
    assert offsets.shape == (inst.num_buffers,)
    assert not overlapping_pairs(inst, offsets)
    placed = offsets >= 0
    if capacity is None:
        assert placed.all(), "the packing game places every buffer"
    else:
        assert (offsets[placed] + inst.size[placed] <= capacity).all()
