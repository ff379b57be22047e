"""The mallocGame environments' batched core: many game positions stepped in lockstep.

:class:`MallocGameVectorEnv` (mapping) and :class:`MallocPackVectorEnv` (packing) are native
``gymnasium.vector.VectorEnv``\\ s over the rules in :mod:`rlsuite.envs.malloc.game`; the single
``gymnasium.Env``\\ s in :mod:`rlsuite.envs.malloc.env` are batches of one over them.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.malloc import game
from rlsuite.envs.malloc.game import Candidates, GameState, GameTables
from rlsuite.envs.malloc.generators import GENERATORS, random_instance, tight_instance
from rlsuite.envs.malloc.instances import (
    HardwareProfile,
    Instance,
    InstanceError,
    load_instance,
    shipped_instances,
)
from rlsuite.envs.malloc.observation import ObservationLayout, observe

from rlsuite import keyed_random
from rlsuite.model import ModelStep
from rlsuite.vector import BatchedVectorEnv, Info

_MAX_USES = {"random": 4, "tight": 2}  # the generators' most uses per buffer

InstanceSpec = str | Path | Instance
"""One instance: a shipped name, a CSV path or an :class:`Instance`."""


def _load_instances(instance: InstanceSpec | Sequence[InstanceSpec]) -> list[Instance]:
    """The instances ``instance`` names: one, or a list (a ``list`` or ``tuple``) of them."""
    if isinstance(instance, Instance):
        return [instance]
    if isinstance(instance, (str, Path)):
        return [load_instance(instance)]
    if not isinstance(instance, (list, tuple)):
        raise ValueError(
            f"instance must be a shipped name, a CSV path, an Instance or a list of these; got "
            f"{type(instance).__name__} {instance!r}"
        )
    if not instance:
        raise ValueError(
            "instance is an empty list; give at least one shipped name, CSV path or Instance "
            f"(shipped: {', '.join(shipped_instances())})"
        )
    loaded = []
    for i, item in enumerate(instance):
        if isinstance(item, Instance):
            loaded.append(item)
            continue
        if not isinstance(item, (str, Path)):
            raise ValueError(
                f"instance[{i}] = {item!r} ({type(item).__name__}) is not a shipped name, a CSV "
                "path or an Instance"
            )
        try:
            loaded.append(load_instance(item))
        except InstanceError as err:
            raise ValueError(f"instance[{i}] = {str(item)!r} cannot be loaded: {err}") from None
    return loaded


class MallocVectorEnv(BatchedVectorEnv):
    """Shared machinery of the two mallocGame envs; ``mode`` is ``"map"`` or ``"pack"``."""

    mode: ClassVar[str]
    episode_metrics: ClassVar[tuple[str, ...]]
    has_action_mask = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        *,
        instance: InstanceSpec | Sequence[InstanceSpec] | None = None,
        generator: str = "random",
        num_buffers: int = 64,
        num_ops: int | None = None,
        instance_seed: int | None = 0,
        capacity_fraction: float = 0.25,
        capacity: int | None = None,
        max_offsets: int = 16,
        lookahead: int = 4,
        image_shape: tuple[int, int] = (32, 64),
        profile_bins: int = 32,
        canvas: float = 2.0,
        hardware: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(num_envs, device)
        if generator not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
        if not isinstance(max_offsets, int) or max_offsets < 1:
            raise ValueError(f"max_offsets must be a positive int, got {max_offsets!r}")
        if not 0.0 < capacity_fraction <= 1.0:
            raise ValueError(f"capacity_fraction must be in (0, 1], got {capacity_fraction}")
        if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
            raise ValueError(f"capacity must be a positive int (bytes), got {capacity!r}")
        if not canvas >= 1.0:
            raise ValueError(f"canvas must be >= 1 (a multiple of the lower bound), got {canvas}")
        if len(tuple(image_shape)) != 2:
            raise ValueError(f"image_shape must be (offset_bins, time_bins), got {image_shape!r}")
        self.layout = ObservationLayout(
            offset_bins=image_shape[0],
            time_bins=image_shape[1],
            lookahead=lookahead,
            profile_bins=profile_bins,
        )
        self.max_offsets = max_offsets
        self._capacity_fraction, self._capacity, self._canvas = capacity_fraction, capacity, canvas
        self._hardware = HardwareProfile.from_dict(hardware) if hardware is not None else None
        self._generator, self._num_buffers, self._num_ops = generator, num_buffers, num_ops
        self._instance_seed = instance_seed
        listed: list[Instance] | None = None
        if instance is not None:
            listed = _load_instances(instance)
            if self._hardware is not None:
                listed = [inst.with_hardware(self._hardware) for inst in listed]
        elif instance_seed is not None:
            listed = [self._generate(int(instance_seed))]
        self.per_episode_instances = listed is None
        self.instance_names: tuple[str, ...] = ()
        if listed is not None:  # one pool row per listed instance, built once
            self.tables = self._tables(listed)
            self.instances: list[Instance] = listed
            self.instance_names = tuple(inst.name for inst in listed)
        else:  # one pool row per env, rewritten on reset
            template = self._generate(0)
            n = template.num_buffers
            t = template.num_ops
            pad = (n, t, _MAX_USES[generator], max(n - 1, 1))
            self._pad = pad
            self.tables = self._tables([template] * num_envs, pad=pad)
            self.instances = [template] * num_envs
        pool = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        # the index into instance_names of each pool row's instance (-1: a per-episode one)
        self._row_instance = torch.arange(len(self.instance_names), device=self.device)
        if self.per_episode_instances:
            pool = torch.arange(num_envs, device=self.device)
            self._row_instance = torch.full((num_envs,), -1, device=self.device)
        self.state = game.initial_state(self.tables, pool, offset_bins=self.layout.offset_bins)
        self.single_observation_space = self.layout.space()
        n_actions = max_offsets + 1 if self.mode == "map" else max_offsets
        self.single_action_space = spaces.Discrete(n_actions)
        self._finish_spaces()
        self._cands: Candidates | None = None

    # -- instances --------------------------------------------------------------------------
    def _generate(self, seed: int) -> Instance:
        kwargs = {"hardware": self._hardware} if self._hardware is not None else {}
        if self._generator == "random":
            return random_instance(self._num_buffers, self._num_ops, seed, **kwargs)
        num_ops = self._num_buffers if self._num_ops is None else self._num_ops
        return tight_instance(self._num_buffers, num_ops, seed, **kwargs)[0]

    def fast_capacity(self, inst: Instance) -> float:
        """Bytes of fast memory: ``capacity``, or ``capacity_fraction`` × the peak live bytes."""
        if self._capacity is not None:
            return float(self._capacity)
        return float(max(1, round(self._capacity_fraction * inst.peak_live_bytes)))

    def _tables(
        self,
        instances: Sequence[Instance],
        pad: tuple[int, int, int, int] | None = None,
    ) -> GameTables:
        return game.build_tables(
            instances,
            self.mode,  # type: ignore[arg-type]
            [self.fast_capacity(inst) for inst in instances],
            time_bins=self.layout.time_bins,
            canvas=self._canvas,
            pad=pad,
            device=self.device,
        )

    def instance(self, index: int = 0) -> Instance:
        """The instance environment ``index`` is playing (``instances[state.pool[index]]``)."""
        return self.instances[int(self.state.pool[index])]

    def instance_indices(self) -> torch.Tensor:
        """(B,) int64: the index into ``instance_names`` of the instance each env is playing
        (also ``info["instance"]``); −1 for per-episode synthetic instances."""
        return self._row_instance[self.state.pool]

    def _draw_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """The listed instance (pool row) each env in ``ids`` plays this episode: uniform,
        keyed by (env seed, episode index), so independent of the batch and the device."""
        keys = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids])
        count = len(self.instance_names)
        u = keyed_random.uniform(keys, 1)[:, 0]
        return (u * count).long().clamp(max=count - 1)

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[torch.Tensor, Info]:
        """As ``BatchedVectorEnv.reset``; ``info["instance"]`` names each env's instance."""
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "instance": self.instance_indices()}

    # -- the game ---------------------------------------------------------------------------
    def _reset_envs(self, ids: torch.Tensor) -> None:
        if self.per_episode_instances and len(ids):
            keys = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids])
            fresh_instances = [self._generate(key & ((1 << 62) - 1)) for key in keys.tolist()]
            for env, inst in zip(ids.tolist(), fresh_instances, strict=True):
                self.instances[env] = inst
            self.tables.write(ids, self._tables(fresh_instances, pad=self._pad))
        rows = self.state.pool[ids]
        if len(self.instance_names) > 1:  # a list of instances: draw one per episode
            rows = self._draw_rows(ids)
        fresh = game.initial_state(self.tables, rows, offset_bins=self.layout.offset_bins)
        self.state.put(ids, fresh)
        self._cands = None

    def candidates(self) -> Candidates:
        """The current buffer's legal placements in every env (offsets, gaps, action mask)."""
        if self._cands is None:
            self._cands = game.candidates(self.tables, self.state, self.max_offsets)
        return self._cands

    def action_masks(self) -> torch.Tensor:
        """(B, A) bool: the legal actions now (also ``info["action_mask"]``); a copy."""
        return self.candidates().action_mask.clone()

    def _observe(self) -> torch.Tensor:
        return observe(self.tables, self.state, self.layout)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        cands = self.candidates()
        game.check_actions(actions, cands)
        self.state, reward, terminated = game.transition(
            self.tables, self.state, actions, cands, inplace=True
        )
        self._cands = None
        truncated = torch.zeros_like(terminated)
        return reward.float(), terminated, truncated, self._episode_info()

    # -- the deterministic model for search agents (rlsuite.model) ---------------------------
    has_model = True

    def _get_model_state(self, ids: torch.Tensor) -> GameState:
        return self.state.select(ids)

    def _set_model_state(self, ids: torch.Tensor, state: GameState) -> None:
        self._check_state(state)
        if state.usage is None or state.image is None:
            raise ValueError("set_state needs a state with its observation caches (from get_state)")
        # a per-episode synthetic instance lives in its env's own pool row; listed instances
        # share the pool, so a position of any listed instance can go into any env
        if self.per_episode_instances and not bool((state.pool == self.state.pool[ids]).all()):
            raise ValueError(
                f"the state was taken on other envs (pool rows {state.pool.tolist()}, these envs "
                f"use {self.state.pool[ids].tolist()})"
            )
        self.state.put(ids, state)
        self._needs_reset[ids] = state.step >= self.tables.num_buffers[state.pool]
        self._cands = None

    def step_from(self, states: GameState, actions: Any) -> ModelStep:
        """The game's transition on any batch of positions, without touching the envs:
        returns ``(next_states, rewards, terminated, next_action_masks)``. Positions without
        observation caches (``state.without_observation()``) step faster."""
        self._check_state(states)
        actions = torch.as_tensor(actions, device=self.device).reshape(-1)
        if actions.is_floating_point() or actions.dtype == torch.bool:
            raise ValueError(f"actions must be integers, got {actions.dtype}: {actions.tolist()}")
        actions = actions.long()
        if actions.shape[0] != states.pool.shape[0]:
            raise ValueError(
                f"{states.pool.shape[0]} positions need as many actions, got {actions.shape[0]}"
            )
        cands = game.candidates(self.tables, states, self.max_offsets)
        if bool(((actions < 0) | (actions >= cands.action_mask.shape[1])).any()):
            raise ValueError(
                f"actions must be in [0, {cands.action_mask.shape[1] - 1}], got {actions.tolist()}"
            )
        game.check_actions(actions, cands)
        nxt, reward, terminated = game.transition(self.tables, states, actions, cands)
        return ModelStep(
            nxt,
            reward.float(),
            terminated,
            game.candidates(self.tables, nxt, self.max_offsets).action_mask,
        )

    def observe_states(self, states: GameState) -> torch.Tensor:
        """Observations of any batch of positions (with observation caches)."""
        self._check_state(states)
        return observe(self.tables, states, self.layout)

    def _check_state(self, state: GameState) -> None:
        if not isinstance(state, GameState):
            raise TypeError(f"expected a GameState (from get_state), got {type(state).__name__}")
        reference = game.initial_state(
            self.tables, self.state.pool[:1], offset_bins=self.layout.offset_bins
        )
        for name, expected in reference.to_dict().items():
            value = getattr(state, name)
            if value is None:
                continue
            if (
                value.shape[1:] != expected.shape[1:]
                or value.dtype != expected.dtype
                or value.device != expected.device
            ):
                raise ValueError(
                    f"state.{name} is {tuple(value.shape)} {value.dtype} on {value.device}; this env "
                    f"needs (B, {', '.join(map(str, expected.shape[1:]))}) {expected.dtype} on "
                    f"{expected.device}: the state is from another env or device"
                )
        rows = self.tables.num_buffers.shape[0]
        if bool(((state.pool < 0) | (state.pool >= rows)).any()) or not bool(
            (self.tables.instance_key[state.pool] == state.instance_key).all()
        ):
            raise ValueError(
                "the state was taken on an instance this env does not hold (another instance or "
                "capacity, or a per-episode instance that has since been replaced)"
            )

    # -- results ----------------------------------------------------------------------------
    def buffer_offsets(self, index: int = 0, state: GameState | None = None) -> np.ndarray:
        """Offsets (bytes; −1 = slow memory / not yet placed) of env ``index``'s buffers, in the
        instance file's row order."""
        state = self.state if state is None else state
        pool = int(state.pool[index])
        n = int(self.tables.num_buffers[pool])
        offsets = np.full(n, -1.0)
        offsets[self.tables.file_index[pool, :n].cpu().numpy()] = (
            state.offset[index, :n].cpu().numpy()
        )
        return offsets

    @abstractmethod
    def _episode_info(self) -> Info:
        """The game's ``info`` entries after a step (its ``episode_metrics``)."""

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {f"game_{k}": v for k, v in self.state.to_dict().items()}

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        if self.per_episode_instances:  # rebuild each env's instance from its seeds
            self._reset_envs(torch.arange(self.num_envs, device=self.device))
        loaded = GameState.from_dict({k[5:]: v for k, v in state.items() if k.startswith("game_")})
        self._check_state(loaded)
        self.state = loaded
        self._cands = None


class MallocGameVectorEnv(MallocVectorEnv):
    """The mallocGame: map an ML program's buffers onto fast and slow memory.

    Source: Wang et al., "Optimizing Memory Mapping Using Deep Reinforcement Learning"
    (DeepMind, arXiv 2305.07440). Instances, units and the cost model are documented in
    :mod:`rlsuite.envs.malloc.instances`.

    **Description.** A program's ``N`` buffers arrive one at a time in XLA's order (decreasing
    memory-boundedness ``benefit / sqrt(size)``, ties by size then lifetime). For each, the agent
    leaves it in slow memory or places it in fast memory — ``C`` bytes, by default 25 % of the
    program's peak live bytes (``capacity_fraction``; or ``capacity`` in bytes) — at an offset
    where it fits over its whole live range. Nothing is ever moved, so the episode is the
    mapping, and leaving a buffer in slow memory is always legal (no dead ends).

    **Action space.** ``Discrete(max_offsets + 1)``: 0 = slow memory; ``j ≥ 1`` = the ``j``-th
    lowest candidate offset (offset 0 and the top edges of placed, time-overlapping buffers where
    the buffer fits; :mod:`rlsuite.envs.malloc.game`). ``info["action_mask"]`` (``(B, A)`` bool)
    marks the legal actions; an illegal action raises a ``ValueError`` that lists them.
    ``candidates()`` gives each slot's offset and the length of the free gap it starts.

    **Observation space.** ``Box(0, 1, (D,), float32)``: the occupancy image of the time ×
    offset canvas, the current and next ``lookahead`` buffers' features, the free-capacity
    profile over the current buffer's live range and the progress — laid out in
    :mod:`rlsuite.envs.malloc.observation` (``env.layout.split(obs)`` names the parts).

    **Reward.** The program time the placement saves under the cost model, divided by the
    all-slow program time; 0 for slow memory. The return is the fraction of program time saved
    by the final mapping (``info["time_saved"]`` at the last step).

    **Episode end.** Terminates after the last buffer (``N`` steps); never truncates.

    **Arguments.** ``instance`` (a shipped name such as ``"resnet18-train-b8-r224"``, a CSV path
    or an :class:`~rlsuite.envs.malloc.instances.Instance`, or a list of these: see *Instance
    lists*); without it a synthetic instance from
    ``generator`` (``"random"`` or ``"tight"``) with ``num_buffers`` (64) and ``num_ops`` —
    fixed by ``instance_seed`` (0), or drawn per episode from the reset seed when
    ``instance_seed=None``; ``capacity_fraction``/``capacity``; ``max_offsets`` (16);
    ``lookahead`` (4); ``image_shape`` ((32, 64) offset × time bins); ``profile_bins`` (32);
    ``hardware`` (a :class:`~rlsuite.envs.malloc.instances.HardwareProfile` as a dict, for
    every instance); ``canvas`` (2.0) is the packing game's and unused here. The vector env also
    takes ``num_envs`` and ``device``.

    **Instance lists** (for generalisation). ``instance=[a, b, ...]`` plays one of the listed
    instances per episode, drawn uniformly from the env's seed and episode index
    (:mod:`rlsuite.keyed_random`), so an env's sequence of instances is the same in any batch
    and on any device. All of them sit in one :class:`~rlsuite.envs.malloc.game.GameTables`
    pool, one row each in list order, padded to the largest (so memory grows with the number
    listed × the largest's buffers²); a reset only points the env at its row, and an instance
    plays exactly (bit for bit) as it does alone. Observation and action spaces do not depend
    on the instance. ``instance_names`` lists the names in order (they may repeat);
    ``info["instance"]`` (int64 ``(B,)``, at reset and every step) is the index into it of the
    instance each env plays — at a step, the one that step played (``info["_instance"]``
    marks the envs that played; those reset on the step show the finished episode's) — and
    ``instance(i)`` is env ``i``'s :class:`~rlsuite.envs.malloc.instances.Instance`. A single
    instance is a list of one (index 0); per-episode synthetic instances have index −1 and no
    names. Checkpoints (``state_dict``) hold each env's pool row, so a loaded env plays the same
    instances (on an env built with the same list; another list is refused). An empty list,
    or an element that is not a name, path or ``Instance`` or does not load, is a
    ``ValueError`` naming the element (``instance[i] = ...``).

    **Search model.** ``get_state()`` / ``set_state(state)`` copy and restore positions
    (:class:`~rlsuite.envs.malloc.game.GameState`); ``step_from(states, actions)`` is the
    deterministic transition on any batch of positions.
    """

    mode = "map"
    episode_metrics = ("time_saved", "fast_buffers")

    def _episode_info(self) -> Info:
        return {
            "time_saved": self.state.saved / self.tables.slow_time[self.state.pool],
            "fast_buffers": (self.state.offset[:, :-1] >= 0).sum(1).double(),
            "instance": self.instance_indices(),
        }


class MallocPackVectorEnv(MallocVectorEnv):
    """The packing game: give every buffer of an ML program an address, keeping memory low.

    The dynamic storage allocation problem that TelaMalloc and MiniMalloc solve (and the
    mallocGame's packing variant; Wang et al., arXiv 2305.07440). Instances as for
    :class:`MallocGameVectorEnv`.

    **Description.** Buffers arrive in decreasing size (ties by longer lifetime, then earlier
    start); each must be placed at an offset where it does not meet any time-overlapping
    buffer. Memory is unbounded, so there is always a legal move: the top gap, above every
    overlapping buffer.

    **Action space.** ``Discrete(max_offsets)``: slot ``j`` = the ``j``-th lowest candidate
    offset; when more candidates fit than there are slots, the last slot holds the top gap.
    Mask and errors as for the mapping game.

    **Observation space.** As for :class:`MallocGameVectorEnv`, with the canvas ``canvas`` ×
    the lower bound (the peak live bytes) high.

    **Reward.** Minus the rise of the peak height (the highest top edge so far), divided by
    the lower bound, so the return is ``−height / lower bound`` and ``info["height_ratio"]``
    (``height / lower bound`` ≥ 1 at the end) is the score: 1 is optimal.

    **Episode end.** Terminates after the last buffer; never truncates.

    **Arguments.** As for :class:`MallocGameVectorEnv`: ``instance`` (a shipped name, a CSV
    path, an ``Instance`` or a list of them), else a synthetic instance from ``generator``
    (``"random"`` or ``"tight"``, whose optimum height equals the lower bound), ``num_buffers``
    (64) and ``num_ops``, fixed by ``instance_seed`` (0; ``None``: drawn per episode);
    ``max_offsets`` (16 action slots); ``lookahead`` (4); ``image_shape`` ((32, 64));
    ``profile_bins`` (32); ``hardware``. ``canvas`` (2.0): the canvas height the image shows, a
    multiple (≥ 1) of the lower bound. ``capacity_fraction`` and ``capacity`` are accepted and
    unused (memory is unbounded). The vector env also takes ``num_envs`` and ``device``.
    """

    mode = "pack"
    episode_metrics = ("height_ratio",)

    def _episode_info(self) -> Info:
        return {
            "height_ratio": self.state.height / self.tables.lower_bound[self.state.pool],
            "instance": self.instance_indices(),
        }
