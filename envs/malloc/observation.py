"""What a mallocGame agent sees: one flat float32 vector in four documented parts.

=================  ===============================  =========================================
part               shape                            entries (all in [0, 1])
=================  ===============================  =========================================
``occupancy``      ``(offset_bins, time_bins)``     share of each cell of the time × offset
                                                    canvas covered by fast-memory buffers;
                                                    rows are offsets from 0 up to the scale,
                                                    columns the schedule ``[0, T)``
``buffers``        ``(lookahead + 1, 5)``           the current buffer, then the next ones:
                                                    present, start / T, end / T,
                                                    size / scale (at most 1), benefit /
                                                    max benefit
``free_profile``   ``(profile_bins,)``              free fast memory ``(scale − used) / scale``
                                                    at evenly spaced times over the current
                                                    buffer's live range (0 when clipped)
``progress``       ``(2,)``                         buffers decided / N; mapping: time saved
                                                    so far / all-slow time, packing: peak
                                                    height / scale (at most 1)
=================  ===============================  =========================================

The scale is the fast-memory capacity ``C`` in the mapping game and ``canvas × lower bound``
bytes (default 2 × the peak live bytes) in the packing game; parts of a packing above the canvas
are not drawn (the observation only; placements are never clipped). A row past the last buffer
is all zeros (present = 0). :meth:`ObservationLayout.split` cuts a batch of observations into
the four named parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.malloc.game import GameState, GameTables, current_buffer

BUFFER_FEATURES = ("present", "start", "end", "size", "benefit")


@dataclass(frozen=True)
class ObservationLayout:
    offset_bins: int = 32
    time_bins: int = 64
    lookahead: int = 4
    profile_bins: int = 32

    def __post_init__(self) -> None:
        for name in ("offset_bins", "time_bins", "profile_bins"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.lookahead, int) or self.lookahead < 0:
            raise ValueError(f"lookahead must be an int >= 0, got {self.lookahead!r}")

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {
            "occupancy": (self.offset_bins, self.time_bins),
            "buffers": (self.lookahead + 1, len(BUFFER_FEATURES)),
            "free_profile": (self.profile_bins,),
            "progress": (2,),
        }

    @property
    def size(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes.values())

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.size,), np.float32)

    def split(self, obs: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor | np.ndarray]:
        """The named parts of observations of shape ``(..., size)``."""
        parts, start = {}, 0
        for name, shape in self.shapes.items():
            n = int(np.prod(shape))
            parts[name] = obs[..., start : start + n].reshape(*obs.shape[:-1], *shape)
            start += n
        return parts


def observe(tables: GameTables, state: GameState, layout: ObservationLayout) -> torch.Tensor:
    """(B, layout.size) float32 observations of the positions ``state`` (which must carry its
    observation caches, ``usage`` and ``image``)."""
    if state.usage is None or state.image is None:
        raise ValueError("observations need a state with its usage and image caches")
    pool, cur = state.pool, current_buffer(tables, state)
    B, N = pool.shape[0], tables.max_buffers
    scale = tables.scale[pool]
    n_buffers = tables.num_buffers[pool]
    T = tables.num_ops[pool].double()
    rows = (state.step[:, None] + torch.arange(layout.lookahead + 1, device=pool.device)).clamp(
        max=N
    )
    rows = torch.where(rows < n_buffers[:, None], rows, N)
    present = rows < N
    p = pool[:, None]
    max_benefit = tables.benefit[pool].amax(1).clamp(min=1e-300)
    buffers = (
        torch.stack(
            [
                present.double(),
                tables.start[p, rows] / T[:, None],
                tables.end[p, rows] / T[:, None],
                (tables.size[p, rows] / scale[:, None]).clamp(max=1.0),
                tables.benefit[p, rows] / max_benefit[:, None],
            ],
            dim=-1,
        )
        * present[..., None]
    )
    s, e = tables.start[pool, cur], tables.end[pool, cur]
    frac = (torch.arange(layout.profile_bins, device=pool.device) + 0.5) / layout.profile_bins
    times = s[:, None] + (frac[None, :] * (e - s)[:, None]).long()
    used = state.usage.gather(1, times.clamp(max=state.usage.shape[1] - 1))
    free = ((scale[:, None] - used) / scale[:, None]).clamp(0.0, 1.0) * (cur < N)[:, None]
    if tables.mode == "map":
        achieved = state.saved / tables.slow_time[pool]
    else:
        achieved = (state.height / scale).clamp(max=1.0)
    progress = torch.stack([state.step / n_buffers, achieved], dim=1)
    return torch.cat(
        [
            state.image.reshape(B, -1).clamp(0.0, 1.0),
            buffers.reshape(B, -1).float(),
            free.float(),
            progress.float(),
        ],
        dim=1,
    )
