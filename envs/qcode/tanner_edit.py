"""The Tanner-graph editing environment: grow a good hypergraph-product code edge by edge.

Source: He & Liu, "Discovering highly efficient low-weight quantum error-correcting codes with
reinforcement learning" (arXiv 2502.14372, 2025), whose agent edits the Tanner graph of a code
one edge at a time under degree caps. Here the graph is that of a classical parity-check
matrix ``H`` and the quantum code is its hypergraph product (:mod:`rlsuite.envs.qcode.product`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.qcode.product import ProductParameters, hgp_parameters

from rlsuite import keyed_random
from rlsuite.model import BatchState, ModelStep
from rlsuite.vector import BatchedVectorEnv, Info

OBJECTIVES = ("kd2/n", "kd/n")


def objective_value(params: ProductParameters, objective: str) -> torch.Tensor:
    """``k d² / n`` (default) or ``k d / n`` of each code; 0 when ``k = 0``."""
    return _objective(params.dimension, params.distance, params.num_qubits.double(), objective)


def _objective(
    dimension: torch.Tensor,
    distance: torch.Tensor,
    num_qubits: torch.Tensor | float,
    objective: str,
) -> torch.Tensor:
    k = dimension.double()
    d = torch.where(k > 0, distance, 0.0)
    power = 2 if objective == "kd2/n" else 1
    return k * d**power / num_qubits


@dataclass
class TannerState(BatchState):
    """A batch of TannerEdit positions (:class:`rlsuite.model.BatchState`). ``dimension`` and
    ``distance`` are the product code's ``k`` and ``d``, computed from ``H`` by the env (a
    cache: ``set_state`` checks them, ``step_from`` trusts them)."""

    H: torch.Tensor  # (B, M, m, n) bool: the edited parity-check matrices
    t: torch.Tensor  # (B,) int64: toggles so far
    start_score: torch.Tensor  # (B,) float64: the objective at the episode's start (≥ 1e-9)
    stopped: torch.Tensor  # (B,) bool: the stop action has ended the episode
    dimension: torch.Tensor  # (B,) int64: k of the product code
    distance: torch.Tensor  # (B,) float64: d of the product code (inf when k = 0)

    @property
    def episode_step(self) -> torch.Tensor:
        """(B,) int64: every step toggles an edge or stops, so toggles + 1 once stopped."""
        return self.t + self.stopped.long()


def random_tanner_graphs(
    keys: torch.Tensor, num_checks: int, num_bits: int, row_cap: int, col_cap: int, bit_degree: int
) -> torch.Tensor:
    """A batch of random degree-constrained parity-check matrices, one per int64 key.

    Each bit (column) joins ``bit_degree`` distinct checks drawn uniformly among those with
    fewer than ``row_cap`` bits (fewer if too few have room); a check left empty then takes one
    bit that has fewer than ``col_cap`` checks (if any). The same key gives the same matrix."""
    B, dev = keys.shape[0], keys.device
    H = torch.zeros(B, num_checks, num_bits, dtype=torch.bool, device=dev)
    draws = keyed_random.uniform(keys, num_bits * num_checks + num_checks * num_bits)
    for j in range(num_bits):
        room = H.sum(2) < row_cap  # (B, m)
        score = torch.where(room, draws[:, j * num_checks : (j + 1) * num_checks], -1.0)
        top = torch.topk(score, min(bit_degree, num_checks), dim=1)
        chosen = torch.zeros_like(room).scatter_(1, top.indices, top.values > 0)
        H[:, :, j] = chosen
    offset = num_bits * num_checks
    for i in range(num_checks):
        empty = ~H[:, i].any(1)
        room = H.sum(1) < col_cap  # (B, n)
        score = torch.where(
            room, draws[:, offset + i * num_bits : offset + (i + 1) * num_bits], -1.0
        )
        best = torch.argmax(score, dim=1)
        add = empty & (score.gather(1, best[:, None])[:, 0] > 0)
        H[torch.arange(B, device=dev), i, best] |= add
    return H


class TannerEditVectorEnv(BatchedVectorEnv):
    """Edit a classical Tanner graph to improve its hypergraph-product quantum code.

    Source: He & Liu, arXiv 2502.14372 (2025); the product: Tillich & Zémor (2014).

    **Description.** The state is a classical parity-check matrix ``H`` (``num_checks × num_bits``,
    default 9 × 12) — a Tanner graph with an edge per 1 — and the quantum code is
    ``HGP(H, H)`` (``two_matrices=True``: ``HGP(H1, H2)`` with two edited matrices). Each step
    toggles one edge. Degree caps keep every check weight of the product at most
    ``row_cap + col_cap`` (3 + 3 = 6) and every qubit degree at most ``max(row_cap, col_cap)``:
    ``H`` keeps every row weight in ``[1, row_cap]`` and every column weight in
    ``[1, col_cap]``. The product's ``[[n, k, d]]`` follow from the classical codes of ``H`` and
    ``Hᵀ`` (exact for classical dimensions up to ``max_dimension``; beyond, ``d`` is an upper
    bound and ``info["distance_exact"]`` is 0; its random information sets are keyed by the
    matrix, so the same ``H`` always gets the same ``d``).

    **Action space.** ``Discrete(M · num_checks · num_bits + 1)`` (``M`` = 1 or 2 matrices):
    action ``a < M·m·n`` toggles entry ``(a // n % m, a % n)`` of matrix ``a // (m n)``; the
    last action stops the episode. ``info["action_mask"]`` marks the legal toggles (those that
    keep the caps and leave no row or column empty); a masked action raises a ``ValueError``.

    **Observation space.** ``Box(0, 1, (M·m·n + 4,), float32)``: the entries of ``H`` (row by
    row), then ``k / n``, ``d / max(m, n_bits)`` (0 when ``k = 0``), the objective over its
    value at the start of the episode scaled by 1/10 (clipped to 1), and the fraction of steps
    left.

    **Reward.** The change of the objective — ``objective="kd2/n"`` (default, ``k d² / n``, the
    figure of merit of codes that trade rate for distance) or ``"kd/n"`` — so the return is
    the final objective minus the initial one. ``info`` has ``n``, ``k``, ``d``,
    ``objective``, ``max_check_weight``, ``max_qubit_degree`` and ``distance_exact``.

    **Starting state.** ``initial="random"`` (default): a random degree-constrained ``H`` (each
    bit in ``bit_degree`` = 2 checks; :func:`random_tanner_graphs`) drawn from the reset seed and
    episode; or a fixed ``(m, n)`` 0/1 array (every episode starts there).

    **Episode end.** Terminates on the stop action; truncated after ``max_steps`` (50) toggles.

    **Arguments** (keyword-only; the vector env also takes ``num_envs`` and ``device``):

    | argument                    | default    | meaning                                          |
    |-----------------------------|------------|--------------------------------------------------|
    | ``num_checks``, ``num_bits``| 9, 12      | the shape ``m × n`` of ``H``                     |
    | ``row_cap``, ``col_cap``    | 3, 3       | max row (check) and column (bit) weight of ``H`` |
    | ``bit_degree``              | 2          | column weight of the random starting graphs      |
    | ``two_matrices``            | ``False``  | edit ``H1`` and ``H2`` of ``HGP(H1, H2)``        |
    | ``initial``                 | ``"random"`` | the starting ``H``: random, or a fixed 0/1 array |
    | ``objective``               | ``"kd2/n"``| ``"kd2/n"`` or ``"kd/n"``                        |
    | ``max_steps``               | 50         | toggles per episode (truncation)                 |
    | ``max_dimension``           | 16         | exact classical distances up to this dimension   |

    **Search model** (:mod:`rlsuite.model`). ``get_state()`` returns a :class:`TannerState`:
    ``H`` ``(B, M, m, n)`` bool, the toggles ``t``, the episode's ``start_score``, ``stopped``
    and the product code's ``dimension`` and ``distance`` (a cache of ``H``); its
    ``episode_step`` is ``t`` plus 1 once stopped, as the env counts. ``step_from(states,
    actions)`` is the env's own transition (:meth:`transition`) on any batch of states, which
    it leaves untouched; a stopped state stays as it is (reward 0, not terminated again). It
    has no time limit — truncation after ``max_steps`` is the env's; ``states.t`` says how
    many toggles a state has made. The transitions are deterministic: the only randomness,
    the information sets of distances above ``max_dimension``, is keyed by ``H``'s content.
    A state of an env with other sizes (``num_checks``, ``num_bits``, ``two_matrices``) or
    tighter degree caps is refused with a ``ValueError``; ``set_state`` also checks that the
    cached ``dimension`` and ``distance`` are ``H``'s (they differ under another
    ``max_dimension``).
    """

    has_action_mask = True
    has_model = True
    episode_metrics: ClassVar[tuple[str, ...]] = ("objective", "k", "d", "n")

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        *,
        num_checks: int = 9,
        num_bits: int = 12,
        row_cap: int = 3,
        col_cap: int = 3,
        bit_degree: int = 2,
        two_matrices: bool = False,
        initial: str | np.ndarray | Sequence[Sequence[int]] = "random",
        objective: str = "kd2/n",
        max_steps: int = 50,
        max_dimension: int = 16,
    ) -> None:
        super().__init__(num_envs, device)
        for name, value in (
            ("num_checks", num_checks),
            ("num_bits", num_bits),
            ("row_cap", row_cap),
            ("col_cap", col_cap),
            ("bit_degree", bit_degree),
            ("max_steps", max_steps),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if bit_degree > col_cap:
            raise ValueError(f"bit_degree={bit_degree} exceeds col_cap={col_cap}")
        self.num_checks, self.num_bits = num_checks, num_bits
        self.row_cap, self.col_cap, self.bit_degree = row_cap, col_cap, bit_degree
        self.num_matrices = 2 if two_matrices else 1
        self.objective, self.max_steps, self.max_dimension = objective, max_steps, max_dimension
        self.num_qubits = num_bits * num_bits + num_checks * num_checks  # n of HGP(H1, H2)
        self._initial = self._fixed_initial(initial)
        self.edges = self.num_matrices * num_checks * num_bits
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.edges + 4,), np.float32)
        self.single_action_space = spaces.Discrete(self.edges + 1)
        self._finish_spaces()
        # placeholder positions (every entry set) until reset
        H = torch.ones(
            (num_envs, self.num_matrices, num_checks, num_bits),
            dtype=torch.bool,
            device=self.device,
        )
        self.params = self._parameters(H)
        self.state = self._positions(
            H, torch.ones(num_envs, dtype=torch.float64, device=self.device)
        )

    def _fixed_initial(self, initial: Any) -> torch.Tensor | None:
        if isinstance(initial, str):
            if initial != "random":
                raise ValueError(f"initial must be 'random' or a 0/1 matrix, got {initial!r}")
            return None
        H = np.asarray(initial)
        expected = (self.num_checks, self.num_bits)
        allowed = [expected] + ([(2, *expected)] if self.num_matrices == 2 else [])
        if H.shape not in allowed:
            raise ValueError(
                f"initial must have shape {' or '.join(map(str, allowed))}, got {H.shape}"
            )
        if not np.isin(H, (0, 1)).all():
            raise ValueError("initial must be a 0/1 matrix")
        H = np.broadcast_to(H, (self.num_matrices, *expected)).astype(bool)
        rows, cols = H.sum(2), H.sum(1)
        if (
            (rows < 1).any()
            or (rows > self.row_cap).any()
            or (cols < 1).any()
            or (cols > self.col_cap).any()
        ):
            raise ValueError(
                f"initial must have row weights in [1, {self.row_cap}] and column weights in "
                f"[1, {self.col_cap}]; got rows {rows.tolist()}, columns {cols.tolist()}"
            )
        return torch.as_tensor(H.copy(), device=self.device)

    # -- the code's parameters --------------------------------------------------------------
    def _parameters(self, H: torch.Tensor) -> ProductParameters:
        second = H[:, 1] if self.num_matrices == 2 else H[:, 0]
        return hgp_parameters(H[:, 0], second, max_dimension=self.max_dimension)

    def _positions(self, H: torch.Tensor, start_score: torch.Tensor | None = None) -> TannerState:
        """Fresh positions (no toggle yet) at the matrices ``H``; ``start_score`` defaults to
        their own objective."""
        params = self._parameters(H)
        B = H.shape[0]
        state = TannerState(
            H=H.clone(),
            t=torch.zeros(B, dtype=torch.int64, device=H.device),
            start_score=torch.zeros(B, dtype=torch.float64, device=H.device),
            stopped=torch.zeros(B, dtype=torch.bool, device=H.device),
            dimension=params.dimension,
            distance=params.distance,
        )
        start = self.score_of(state).clamp(min=1e-9) if start_score is None else start_score
        state.start_score = start.clone()
        return state

    def score_of(self, states: TannerState) -> torch.Tensor:
        """(B,) float64: the objective of each position's code."""
        return _objective(states.dimension, states.distance, float(self.num_qubits), self.objective)

    @property
    def H(self) -> torch.Tensor:
        """(B, M, m, n) bool: the envs' matrices now."""
        return self.state.H

    @property
    def t(self) -> torch.Tensor:
        return self.state.t

    @property
    def start_score(self) -> torch.Tensor:
        return self.state.start_score

    @property
    def score(self) -> torch.Tensor:
        return self.score_of(self.state)

    def masks_of(self, H: torch.Tensor) -> torch.Tensor:
        """(B, A) bool: the legal actions at the matrices ``H`` (``(B, M, m, n)``)."""
        rows = H.sum(3, keepdim=True)  # (B, M, m, 1)
        cols = H.sum(2, keepdim=True)  # (B, M, 1, n)
        remove_ok = (rows >= 2) & (cols >= 2)
        add_ok = (rows < self.row_cap) & (cols < self.col_cap)
        toggles = torch.where(H, remove_ok, add_ok).reshape(H.shape[0], -1)
        stop = torch.ones(H.shape[0], 1, dtype=torch.bool, device=H.device)
        return torch.cat([toggles, stop], dim=1)

    def action_masks(self) -> torch.Tensor:
        return self.masks_of(self.state.H)

    def always_legal_actions(self) -> np.ndarray:
        """Stop (the last action) is legal in every state."""
        legal = np.zeros(self.single_action_space.n, dtype=bool)
        legal[-1] = True
        return legal

    def _idle_actions(self) -> torch.Tensor:
        """Envs being reset play stop (no toggle to compute)."""
        return torch.full((self.num_envs,), self.edges, dtype=torch.int64, device=self.device)

    # -- the rules --------------------------------------------------------------------------
    def transition(
        self, states: TannerState, actions: torch.Tensor, *, who: str = "env"
    ) -> tuple[TannerState, torch.Tensor, torch.Tensor, ProductParameters]:
        """One step of every position (a pure function: ``states`` is left as it was).

        ``actions`` ``(B,)`` int64 in range, each legal under :meth:`masks_of` (a ``ValueError``
        names the others). Returns the next positions, the reward (float64: the change of the
        objective), ``terminated`` (the stop action) and the next codes' parameters. A stopped
        position stays as it is, with reward 0. The env's ``step`` and ``step_from`` both call
        this, so there is one implementation of the rules."""
        legal = self.masks_of(states.H).gather(1, actions[:, None])[:, 0]
        if not bool(legal.all()):
            bad = torch.nonzero(~legal).flatten().tolist()
            shown = "; ".join(
                f"{who} {i}: action {int(actions[i])} ({self.describe_action(int(actions[i]))})"
                for i in bad[:5]
            )
            raise ValueError(
                f"masked TannerEdit action — {shown}; a toggle must keep every row weight in "
                f"[1, {self.row_cap}] and column weight in [1, {self.col_cap}] "
                "(see info['action_mask'])"
            )
        stop = (actions == self.edges) & ~states.stopped
        toggle = (actions < self.edges) & ~states.stopped
        B = actions.shape[0]
        flat = states.H.reshape(B, -1).clone()
        rows = torch.arange(B, device=flat.device)
        flat[rows, actions.clamp(max=self.edges - 1)] ^= toggle
        H = flat.reshape(states.H.shape)
        params = self._parameters(H)
        nxt = TannerState(
            H=H,
            t=states.t + toggle.long(),
            start_score=states.start_score.clone(),
            stopped=states.stopped | stop,
            dimension=params.dimension,
            distance=params.distance,
        )
        reward = torch.where(states.stopped, 0.0, self.score_of(nxt) - self.score_of(states))
        return nxt, reward, stop, params

    def features(self, states: TannerState) -> torch.Tensor:
        """The observations of positions ``states`` (see the class docstring)."""
        k = states.dimension.double()
        d = torch.where(states.dimension > 0, states.distance, 0.0)
        d = d / max(self.num_checks, self.num_bits)
        relative = (self.score_of(states) / states.start_score / 10.0).clamp(0.0, 1.0)
        left = ((self.max_steps - states.t).double() / self.max_steps).clamp(0.0, 1.0)
        extras = torch.stack([k / self.num_qubits, d.clamp(max=1.0), relative, left], dim=1)
        return torch.cat([states.H.reshape(len(states), -1).float(), extras.float()], dim=1)

    # -- the env ----------------------------------------------------------------------------
    def _reset_envs(self, ids: torch.Tensor) -> None:
        if len(ids) == 0:
            return
        if self._initial is not None:
            fresh = self._initial.expand(len(ids), *self._initial.shape)
        else:
            keys = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids])
            per_matrix = [
                random_tanner_graphs(
                    keyed_random.combine(keys, m),
                    self.num_checks,
                    self.num_bits,
                    self.row_cap,
                    self.col_cap,
                    self.bit_degree,
                )
                for m in range(self.num_matrices)
            ]
            fresh = torch.stack(per_matrix, dim=1)
        self.state.put(ids, self._positions(fresh))

    def _observe(self) -> torch.Tensor:
        return self.features(self.state)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        self.state, reward, terminated, self.params = self.transition(self.state, actions)
        truncated = ~self.state.stopped & (self.state.t >= self.max_steps)
        return reward.float(), terminated, truncated, self._info()

    def _info(self) -> Info:
        p = self.params
        return {
            "n": p.num_qubits.double(),
            "k": p.dimension.double(),
            "d": torch.where(p.dimension > 0, p.distance, 0.0),
            "objective": self.score,
            "max_check_weight": p.max_check_weight.double(),
            "max_qubit_degree": p.max_qubit_degree.double(),
            "distance_exact": p.exact.double(),
        }

    def describe_action(self, action: int) -> str:
        if action == self.edges:
            return "stop"
        m, n = self.num_checks, self.num_bits
        matrix, rest = divmod(action, m * n)
        row, col = divmod(rest, n)
        prefix = f"H{matrix + 1}" if self.num_matrices == 2 else "H"
        return f"toggle {prefix}[{row}, {col}]"

    # -- the deterministic search model (rlsuite.model) ---------------------------------------
    def _get_model_state(self, ids: torch.Tensor) -> TannerState:
        return self.state.select(ids)

    def _set_model_state(self, ids: torch.Tensor, state: TannerState) -> None:
        self._check_state(state)
        params = self._parameters(state.H)
        if not (
            torch.equal(params.dimension, state.dimension)
            and torch.equal(params.distance, state.distance)
        ):
            raise ValueError(
                "the state's dimension / distance are not those of its H: it comes from an env "
                "with another max_dimension, or was edited by hand"
            )
        self.state.put(ids, state)
        self._needs_reset[ids] = state.stopped | (state.t >= self.max_steps)

    def step_from(self, states: TannerState, actions: Any) -> ModelStep:
        """The env's transition on any batch of positions, without touching the envs:
        ``(next_states, rewards, terminated, next_action_masks)`` (see the class docstring)."""
        self._check_state(states)
        actions = torch.as_tensor(actions, device=self.device)
        if actions.is_floating_point() or actions.dtype == torch.bool or actions.ndim > 1:
            raise ValueError(f"actions must be a (K,) integer tensor, got {actions.dtype}")
        actions = actions.long().reshape(-1)
        if actions.shape[0] != len(states):
            raise ValueError(f"{len(states)} positions need as many actions, got {len(actions)}")
        if bool(((actions < 0) | (actions > self.edges)).any()):
            raise ValueError(f"actions must be in [0, {self.edges}], got {actions.tolist()}")
        nxt, reward, terminated, _ = self.transition(states, actions, who="position")
        return ModelStep(nxt, reward.float(), terminated, self.masks_of(nxt.H))

    def observe_states(self, states: TannerState) -> torch.Tensor:
        """The observations of any batch of positions."""
        self._check_state(states)
        return self.features(states)

    def _check_state(self, state: TannerState) -> None:
        if not isinstance(state, TannerState):
            raise TypeError(f"expected a TannerState (from get_state), got {type(state).__name__}")
        expected = (self.num_matrices, self.num_checks, self.num_bits)
        if tuple(state.H.shape[1:]) != expected:
            raise ValueError(
                f"the state's H is (matrices, checks, bits) = {tuple(state.H.shape[1:])}; this env "
                f"edits {expected} (two_matrices={self.num_matrices == 2}, num_checks="
                f"{self.num_checks}, num_bits={self.num_bits})"
            )
        B = len(state)
        for name, dtype in (
            ("H", torch.bool),
            ("t", torch.int64),
            ("start_score", torch.float64),
            ("stopped", torch.bool),
            ("dimension", torch.int64),
            ("distance", torch.float64),
        ):
            value = getattr(state, name)
            if value.dtype != dtype or value.device != self.device or value.shape[0] != B:
                raise ValueError(
                    f"state.{name} is {tuple(value.shape)} {value.dtype} on {value.device}; this "
                    f"env needs {B} positions of {dtype} on {self.device}"
                )
        rows, cols = state.H.sum(3), state.H.sum(2)
        if bool(
            ((rows < 1) | (rows > self.row_cap)).any() | ((cols < 1) | (cols > self.col_cap)).any()
        ):
            raise ValueError(
                f"the state's H breaks this env's degree caps (row weights in [1, {self.row_cap}], "
                f"column weights in [1, {self.col_cap}])"
            )

    # -- checkpoints --------------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"H": self.state.H, "t": self.state.t, "start_score": self.state.start_score}

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        loaded = self._positions(state["H"].clone(), state["start_score"].clone())
        loaded.t = state["t"].clone()
        loaded.stopped = state["episode_step"] > loaded.t  # each step toggles or stops
        self.state = loaded
        self.params = self._parameters(loaded.H)
