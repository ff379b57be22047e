"""The mallocGame's batched core: the rules of both games as pure functions of torch tensors.

Every game position is a :class:`GameState` with a leading batch dimension; the instances the
positions belong to are a :class:`GameTables` pool (one row per distinct instance, padded to a
common size). :func:`candidates` lists the legal placements of each position's current buffer
and :func:`transition` applies one action to every position at once. The vector env, the single
env, the search model (``step_from``) and the baselines all call these two functions, so there
is one implementation of the rules.

**Placements.** The current buffer ``b`` (size ``z``, live over ``[s, e)``) may go at any offset
where it fits over its whole live range: ``[x, x + z)`` must not meet any fast-memory buffer
whose live range overlaps ``[s, e)``, and ``x + z ≤ C``. The candidate offsets are the bottoms
of the maximal free gaps of the address space over ``[s, e)`` — offset 0 and the top edges of
placed, time-overlapping buffers — that are at least ``z`` long. Any offset where ``b`` fits can
be slid down to one of them without meeting another buffer. The first ``M`` candidates by
offset (``max_offsets``) fill the action slots; in the packing game (no capacity, ``C = ∞``) the
top gap, above every overlapping buffer, always fits and always keeps a slot.

Positions are padded: buffer index ``N`` and operation index ``T`` are dummies (a buffer of
size 0 that overlaps nothing; an operation of zero time), so finished positions step harmlessly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
import torch
from rlsuite.envs.malloc.instances import Instance

from rlsuite.model import BatchState

Mode = Literal["map", "pack"]
MODES = ("map", "pack")
_INF = float("inf")


@dataclass(frozen=True)
class GameTables:
    """A pool of ``I`` instances in arrival order, padded to ``N`` buffers and ``T`` operations.

    Shapes: ``(I, N + 1)`` per buffer, ``(I, T + 1)`` per operation; index ``N`` / ``T`` is the
    dummy. Bytes and seconds are float64 (bytes are exact up to 2**53).
    """

    mode: str
    num_buffers: torch.Tensor  # (I,) int64
    num_ops: torch.Tensor  # (I,) int64
    start: torch.Tensor  # (I, N+1) int64, schedule time
    end: torch.Tensor  # (I, N+1) int64, exclusive
    size: torch.Tensor  # (I, N+1) float64, bytes
    benefit: torch.Tensor  # (I, N+1) float64, seconds
    file_index: torch.Tensor  # (I, N) int64: arrival k is row file_index[k] of the instance
    neighbours: torch.Tensor  # (I, N+1, W) int32: earlier arrivals live at the same time as k
    use_op: torch.Tensor  # (I, N+1, K) int64, padded with T
    use_saving: torch.Tensor  # (I, N+1, K) float64 seconds saved per use in fast memory
    compute: torch.Tensor  # (I, T+1) float64 seconds
    slow_memory: torch.Tensor  # (I, T+1) float64 seconds with every buffer in slow memory
    slow_time: torch.Tensor  # (I,) float64 seconds
    capacity: torch.Tensor  # (I,) float64 bytes of fast memory (inf when packing)
    lower_bound: torch.Tensor  # (I,) float64 peak live bytes
    scale: torch.Tensor  # (I,) float64 bytes shown as the full height of the image/profile
    time_cover: torch.Tensor  # (I, N+1, time_bins) float32: share of each time bin covered
    instance_key: torch.Tensor  # (I,) int64: a hash of the instance and capacity in each row

    @property
    def max_buffers(self) -> int:
        return self.start.shape[1] - 1

    @property
    def max_ops(self) -> int:
        return self.compute.shape[1] - 1

    def write(self, rows: torch.Tensor, other: GameTables) -> None:
        """Overwrite the pool rows ``rows`` with the pool ``other`` (one row each, same padding)."""
        for f in fields(self):
            if f.name == "mode":
                continue
            target, source = getattr(self, f.name), getattr(other, f.name)
            if target.shape[1:] != source.shape[1:]:
                raise ValueError(
                    f"instance does not fit the pool's padding: {f.name} has shape "
                    f"{tuple(source.shape[1:])}, the pool {tuple(target.shape[1:])}"
                )
            target[rows] = source


def build_tables(
    instances: Sequence[Instance],
    mode: Mode,
    capacities: Sequence[float],
    *,
    time_bins: int,
    canvas: float = 2.0,
    pad: tuple[int, int, int, int] | None = None,
    device: torch.device | str = "cpu",
) -> GameTables:
    """Tables for ``instances`` (fast-memory ``capacities`` in bytes; ignored when packing,
    where the image shows ``canvas × lower bound`` bytes). ``pad=(N, T, K, W)`` fixes the
    padding (for pools whose rows are overwritten later); by default the largest instance's."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    orders = [inst.mapping_order() if mode == "map" else inst.packing_order() for inst in instances]
    neighbours = [
        _earlier_neighbours(inst, order) for inst, order in zip(instances, orders, strict=True)
    ]
    need = (
        max(inst.num_buffers for inst in instances),
        max(inst.num_ops for inst in instances),
        max(int(np.diff(inst.use_ptr).max()) for inst in instances),
        max(max((len(n) for n in nb), default=0) for nb in neighbours),
    )
    if pad is None:
        pad = need
    elif any(n > p for n, p in zip(need, pad, strict=True)):
        raise ValueError(f"instances need padding (N, T, K, W) = {need}, more than {pad}")
    N, T, K, W = pad
    W = max(W, 1)
    num_rows = len(instances)
    start = np.zeros((num_rows, N + 1), np.int64)
    end = np.zeros((num_rows, N + 1), np.int64)
    size = np.zeros((num_rows, N + 1))
    benefit = np.zeros((num_rows, N + 1))
    file_index = np.zeros((num_rows, N), np.int64)
    nb_table = np.full((num_rows, N + 1, W), N, np.int32)
    use_op = np.full((num_rows, N + 1, K), T, np.int64)
    use_saving = np.zeros((num_rows, N + 1, K))
    compute = np.zeros((num_rows, T + 1))
    slow_memory = np.zeros((num_rows, T + 1))
    time_cover = np.zeros((num_rows, N + 1, time_bins), np.float32)
    for i, (inst, order) in enumerate(zip(instances, orders, strict=True)):
        n = inst.num_buffers
        start[i, :n], end[i, :n], size[i, :n] = (
            inst.lower[order],
            inst.upper[order],
            inst.size[order],
        )
        benefit[i, :n] = inst.benefit[order]
        file_index[i, :n] = order
        for k, row in enumerate(neighbours[i]):
            nb_table[i, k, : len(row)] = row
        counts = np.diff(inst.use_ptr)[order]
        slot = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        which = np.concatenate([np.arange(inst.use_ptr[b], inst.use_ptr[b + 1]) for b in order])
        use_op[i, np.repeat(np.arange(n), counts), slot] = inst.use_op[which]
        use_saving[i, np.repeat(np.arange(n), counts), slot] = inst.use_saving[which]
        compute[i, : inst.num_ops] = inst.compute_time
        slow_memory[i, : inst.num_ops] = inst.memory_time(np.zeros(n, dtype=bool))
        edges = np.linspace(0.0, inst.num_ops, time_bins + 1)
        overlap = np.minimum(end[i, :n, None], edges[None, 1:]) - np.maximum(
            start[i, :n, None], edges[None, :-1]
        )
        time_cover[i, :n] = np.clip(overlap / (edges[1] - edges[0]), 0.0, 1.0)
    lower_bound = np.array([float(inst.peak_live_bytes) for inst in instances])
    if mode == "map":
        capacity = np.asarray(capacities, dtype=np.float64)
        scale = capacity
    else:
        capacity = np.full(num_rows, _INF)
        scale = canvas * lower_bound
    as_t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    return GameTables(
        mode=mode,
        num_buffers=as_t(np.array([inst.num_buffers for inst in instances])),
        num_ops=as_t(np.array([inst.num_ops for inst in instances])),
        start=as_t(start),
        end=as_t(end),
        size=as_t(size),
        benefit=as_t(benefit),
        file_index=as_t(file_index),
        neighbours=as_t(nb_table),
        use_op=as_t(use_op),
        use_saving=as_t(use_saving),
        compute=as_t(compute),
        slow_memory=as_t(slow_memory),
        slow_time=as_t(np.array([inst.slow_time for inst in instances])),
        capacity=as_t(capacity),
        lower_bound=as_t(lower_bound),
        scale=as_t(scale),
        time_cover=as_t(time_cover),
        instance_key=as_t(
            np.array([instance_key(i, c, mode) for i, c in zip(instances, capacity, strict=True)])
        ),
    )


def instance_key(inst: Instance, capacity: float, mode: str) -> int:
    """A 63-bit hash of everything the game's rules read from an instance: positions taken on
    one instance are refused on another."""
    digest = hashlib.blake2b(digest_size=8)
    for array in (
        inst.lower,
        inst.upper,
        inst.size,
        inst.use_ptr,
        inst.use_op,
        inst.use_bytes,
        inst.op_flops,
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr((inst.hardware, float(capacity), mode)).encode())
    return int.from_bytes(digest.digest(), "little") >> 1


def _earlier_neighbours(inst: Instance, order: np.ndarray) -> list[np.ndarray]:
    """For arrival ``k``: the arrivals before ``k`` whose live ranges overlap its own."""
    lo, hi = inst.lower[order], inst.upper[order]
    overlap = (lo[:, None] < hi[None, :]) & (lo[None, :] < hi[:, None])
    earlier = np.tri(len(order), k=-1, dtype=bool)
    return [np.flatnonzero(row) for row in overlap & earlier]


@dataclass
class GameState(BatchState):
    """A batch of game positions (:class:`rlsuite.model.BatchState`). ``usage`` and ``image``
    feed the observation only and may be ``None`` (search that needs no observations runs
    without them)."""

    pool: torch.Tensor  # (B,) int64 row of GameTables
    instance_key: torch.Tensor  # (B,) int64, GameTables.instance_key[pool] when created
    step: torch.Tensor  # (B,) int64: the current buffer's arrival index
    offset: torch.Tensor  # (B, N+1) float64 bytes; -1 = not in fast memory (yet)
    memory: torch.Tensor  # (B, T+1) float64 seconds of memory traffic per operation
    height: torch.Tensor  # (B,) float64 bytes: highest top edge in fast memory
    saved: torch.Tensor  # (B,) float64 seconds saved so far
    usage: torch.Tensor | None = None  # (B, T+1) float64 fast bytes in use per operation
    image: torch.Tensor | None = None  # (B, offset_bins, time_bins) float32 occupancy

    @property
    def episode_step(self) -> torch.Tensor:
        """(B,) int64: one buffer is placed per step, so the arrival index."""
        return self.step

    @classmethod
    def from_dict(cls, data: dict[str, torch.Tensor]) -> GameState:
        names = {f.name for f in fields(cls)}
        required = names - {"usage", "image"}
        if not required <= set(data) <= names:
            raise ValueError(
                f"a mallocGame state has the keys {sorted(required)} (and optionally usage, "
                f"image), got {sorted(data)}"
            )
        return cls(**{k: v.clone() for k, v in data.items()})

    def without_observation(self) -> GameState:
        return replace(self, usage=None, image=None)


def initial_state(
    tables: GameTables, pool: torch.Tensor, *, offset_bins: int | None = None
) -> GameState:
    """Fresh positions (nothing placed) on the pool rows ``pool``; with ``offset_bins`` the
    observation caches are allocated too."""
    B, N = pool.shape[0], tables.max_buffers
    dev = pool.device
    with_obs = offset_bins is not None
    return GameState(
        pool=pool.clone(),
        instance_key=tables.instance_key[pool],
        step=torch.zeros(B, dtype=torch.int64, device=dev),
        offset=torch.full((B, N + 1), -1.0, dtype=torch.float64, device=dev),
        memory=tables.slow_memory[pool].clone(),
        height=torch.zeros(B, dtype=torch.float64, device=dev),
        saved=torch.zeros(B, dtype=torch.float64, device=dev),
        usage=torch.zeros_like(tables.slow_memory[pool]) if with_obs else None,
        image=torch.zeros(B, offset_bins, tables.time_cover.shape[-1], device=dev)
        if with_obs
        else None,
    )


@dataclass(frozen=True)
class Candidates:
    """The legal placements of each position's current buffer: ``M`` slots ordered by offset
    (``offset`` bytes, ``nan`` where empty; ``gap`` bytes: length of the free gap the slot
    starts, ``inf`` for the packing game's top gap) and the action mask (``(B, A)``; in the
    mapping game action 0 is slow memory and action ``j`` is slot ``j − 1``)."""

    offset: torch.Tensor  # (B, M) float64
    gap: torch.Tensor  # (B, M) float64
    slot_valid: torch.Tensor  # (B, M) bool
    action_mask: torch.Tensor  # (B, A) bool
    done: torch.Tensor  # (B,) bool: the position has no current buffer (game over)

    def select(self, ids: torch.Tensor) -> Candidates:
        return Candidates(*(getattr(self, f.name)[ids] for f in fields(self)))


def current_buffer(tables: GameTables, state: GameState) -> torch.Tensor:
    """(B,) the arrival index of each position's current buffer (``N``, the dummy, when done)."""
    done = state.step >= tables.num_buffers[state.pool]
    return torch.where(done, tables.max_buffers, state.step)


def candidates(tables: GameTables, state: GameState, max_offsets: int) -> Candidates:
    """The candidate offsets of every position's current buffer (see the module docstring)."""
    pool, cur = state.pool, current_buffer(tables, state)
    done = cur == tables.max_buffers
    z = tables.size[pool, cur]
    capacity = tables.capacity[pool]
    nb = tables.neighbours[pool, cur].long()  # (B, W)
    o = state.offset.gather(1, nb)
    placed = o >= 0
    num_placed = placed.sum(1, keepdim=True)
    # Only placed neighbours bound the gaps: keep the P lowest (P = most placed in the batch;
    # on a GPU all W, which avoids a device-to-host sync per step).
    width = nb.shape[1] if nb.is_cuda else max(1, int(num_placed.max()))
    lo, which = torch.topk(torch.where(placed, o, _INF), width, dim=1, largest=False)
    nb = nb.gather(1, which)
    hi = torch.where(lo < _INF, lo + tables.size[pool.unsqueeze(1), nb], -_INF)
    top = torch.cummax(hi, dim=1).values.clamp(min=0.0)
    gap_lo = torch.cat([torch.zeros_like(top[:, :1]), top], dim=1)  # (B, P+1)
    gap_hi = torch.minimum(
        torch.cat([lo, torch.full_like(lo[:, :1], _INF)], dim=1), capacity[:, None]
    )
    k = torch.arange(gap_lo.shape[1], device=pool.device)
    gap = gap_hi - gap_lo
    fits = (k <= num_placed) & (gap >= z[:, None]) & (gap > 0)
    rank = torch.cumsum(fits.long(), dim=1) - 1
    M = max_offsets
    if tables.mode == "pack":  # the top gap (at k = num_placed) always keeps the last slot
        is_top = k == num_placed
        keep = fits & ((rank < M - 1) | is_top)
        rank = torch.where(is_top, rank.clamp(max=M - 1), rank)
    else:
        keep = fits & (rank < M)
    slot = torch.where(keep, rank, M)  # M = a discard column
    B = pool.shape[0]
    offset = torch.full((B, M + 1), float("nan"), dtype=torch.float64, device=pool.device)
    gaps = torch.full((B, M + 1), float("nan"), dtype=torch.float64, device=pool.device)
    offset.scatter_(1, slot, gap_lo)
    gaps.scatter_(1, slot, gap)
    offset, gaps = offset[:, :M], gaps[:, :M]
    slot_valid = ~torch.isnan(offset) & ~done[:, None]
    if tables.mode == "map":
        mask = torch.cat([torch.ones_like(slot_valid[:, :1]), slot_valid], dim=1)
    else:
        mask = slot_valid.clone()
        mask[:, 0] |= done  # a finished game offers one (ignored) action
    return Candidates(offset, gaps, slot_valid, mask, done)


def transition(
    tables: GameTables,
    state: GameState,
    actions: torch.Tensor,
    cands: Candidates,
    *,
    inplace: bool = False,
) -> tuple[GameState, torch.Tensor, torch.Tensor]:
    """Apply ``actions`` (``(B,)`` int64, each legal under ``cands.action_mask``) to ``state``;
    returns the new state, the reward and ``terminated``. ``state`` itself is left as it was
    unless ``inplace`` (the env's own step, which skips the copy).

    Rewards: mapping — the program time saved by the placement, as a fraction of the
    all-slow time (so the return is the fraction of time saved); packing — minus the rise of
    the peak height, as a fraction of the lower bound (so the return is ``−height / bound``).
    Finished positions get reward 0 and stay as they are.
    """
    pool, cur, done = state.pool, current_buffer(tables, state), cands.done
    slot = actions - 1 if tables.mode == "map" else actions
    placing = (slot >= 0) & ~done
    slot = slot.clamp(min=0)
    x = torch.where(placing, cands.offset.gather(1, slot[:, None])[:, 0], -1.0)
    z = tables.size[pool, cur]
    new = state if inplace else state.clone()
    rows = torch.arange(pool.shape[0], device=pool.device)
    new.offset[rows, cur] = torch.where(placing, x, state.offset[rows, cur])
    old_height = state.height
    new.height = torch.maximum(old_height, torch.where(placing, x + z, 0.0))
    if tables.mode == "map":
        ops = tables.use_op[pool, cur]  # (B, K)
        saving = tables.use_saving[pool, cur] * placing[:, None]
        compute = tables.compute[pool[:, None], ops]
        before = new.memory.gather(1, ops)
        gained = _padding_exact_sum(
            torch.maximum(compute, before) - torch.maximum(compute, before - saving)
        )
        new.memory.scatter_add_(1, ops, -saving)
        new.saved = new.saved + gained
        reward = gained / tables.slow_time[pool]
    else:
        reward = -(new.height - old_height) / tables.lower_bound[pool]
    if new.usage is not None and new.image is not None:
        t = torch.arange(new.usage.shape[1], device=pool.device)
        live = (t >= tables.start[pool, cur][:, None]) & (t < tables.end[pool, cur][:, None])
        new.usage += live * (z * placing)[:, None]
        bins = new.image.shape[1]
        scale = tables.scale[pool]
        edges = torch.linspace(0.0, 1.0, bins + 1, device=pool.device, dtype=torch.float64)
        edges = edges[None, :] * scale[:, None]
        covered = torch.minimum((x + z)[:, None], edges[:, 1:]) - torch.maximum(
            x[:, None], edges[:, :-1]
        )
        offset_cover = (covered.clamp(min=0.0) / (scale / bins)[:, None]) * placing[:, None]
        new.image += offset_cover.float()[:, :, None] * tables.time_cover[pool, cur][:, None, :]
    new.step = new.step + (~done).long()
    terminated = ~done & (new.step >= tables.num_buffers[pool])
    return new, torch.where(done, 0.0, reward), terminated


def _padding_exact_sum(terms: torch.Tensor) -> torch.Tensor:
    """Row sums of ``(B, K)`` ``terms`` by a pairwise tree over ``K`` padded to a power of two.
    Zero terms appended to a row (the pool's padding of the uses) leave its sum bit for bit as
    it is, so an instance plays exactly alike in any pool; ``.sum(1)`` rounds differently once
    ``K`` is padded from 6 to 8, say."""
    width = 1 << max(terms.shape[1] - 1, 0).bit_length()
    if width > terms.shape[1]:
        terms = torch.nn.functional.pad(terms, (0, width - terms.shape[1]))
    while terms.shape[1] > 1:
        terms = terms[:, 0::2] + terms[:, 1::2]
    return terms[:, 0]


def check_actions(actions: torch.Tensor, cands: Candidates) -> None:
    """Raise a ``ValueError`` naming every position whose action is masked out."""
    legal = cands.action_mask.gather(1, actions[:, None])[:, 0]
    if bool(legal.all()):
        return
    bad = torch.nonzero(~legal).flatten().tolist()
    shown = ", ".join(
        f"env {i}: action {int(actions[i])} (legal: {torch.nonzero(cands.action_mask[i]).flatten().tolist()})"
        for i in bad[:5]
    )
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise ValueError(
        f"illegal mallocGame action — {shown}{more}; legal actions are those where "
        "info['action_mask'] is True (the buffer must fit over its whole live range)"
    )
