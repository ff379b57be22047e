"""The Tanner-graph editing environment: grow a good hypergraph-product code edge by edge.

Source: He & Liu, "Discovering highly efficient low-weight quantum error-correcting codes with
reinforcement learning" (arXiv 2502.14372, 2025), whose agent edits the Tanner graph of a code
one edge at a time under degree caps. Here the graph is that of a classical parity-check
matrix ``H`` and the quantum code is its hypergraph product (:mod:`rlsuite.envs.qcode.product`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.qcode.product import ProductParameters, hgp_parameters

from rlsuite import keyed_random
from rlsuite.vector import BatchedVectorEnv, Info

OBJECTIVES = ("kd2/n", "kd/n")


def objective_value(params: ProductParameters, objective: str) -> torch.Tensor:
    """``k d² / n`` (default) or ``k d / n`` of each code; 0 when ``k = 0``."""
    k, d, n = params.dimension.double(), params.distance, params.num_qubits.double()
    d = torch.where(k > 0, d, 0.0)
    power = 2 if objective == "kd2/n" else 1
    return k * d**power / n


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
    bound and ``info["distance_exact"]`` is 0).

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
    """

    has_action_mask = True
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
        self._initial = self._fixed_initial(initial)
        self.edges = self.num_matrices * num_checks * num_bits
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.edges + 4,), np.float32)
        self.single_action_space = spaces.Discrete(self.edges + 1)
        self._finish_spaces()
        shape = (num_envs, self.num_matrices, num_checks, num_bits)
        self.H = torch.zeros(shape, dtype=torch.bool, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.score = torch.zeros(num_envs, dtype=torch.float64, device=self.device)
        self.start_score = torch.ones(num_envs, dtype=torch.float64, device=self.device)
        self.params = self._parameters(self.H | True)  # placeholder until reset

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

    def action_masks(self) -> torch.Tensor:
        H = self.H
        rows = H.sum(3, keepdim=True)  # (B, M, m, 1)
        cols = H.sum(2, keepdim=True)  # (B, M, 1, n)
        remove_ok = (rows >= 2) & (cols >= 2)
        add_ok = (rows < self.row_cap) & (cols < self.col_cap)
        toggles = torch.where(H, remove_ok, add_ok).reshape(self.num_envs, -1)
        stop = torch.ones(self.num_envs, 1, dtype=torch.bool, device=self.device)
        return torch.cat([toggles, stop], dim=1)

    def always_legal_actions(self) -> np.ndarray:
        """Stop (the last action) is legal in every state."""
        legal = np.zeros(self.single_action_space.n, dtype=bool)
        legal[-1] = True
        return legal

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
        self.H[ids] = fresh
        self.t[ids] = 0
        self._refresh()
        self.start_score[ids] = self.score[ids].clamp(min=1e-9)

    def _refresh(self) -> None:
        self.params = self._parameters(self.H)
        self.score = objective_value(self.params, self.objective)

    def _observe(self) -> torch.Tensor:
        p = self.params
        k, n = p.dimension.double(), p.num_qubits.double()
        d = torch.where(p.dimension > 0, p.distance, 0.0) / max(self.num_checks, self.num_bits)
        relative = (self.score / self.start_score / 10.0).clamp(0.0, 1.0)
        left = (self.max_steps - self.t).double() / self.max_steps
        extras = torch.stack([k / n, d.clamp(max=1.0), relative, left], dim=1)
        return torch.cat([self.H.reshape(self.num_envs, -1).float(), extras.float()], dim=1)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        mask = self.action_masks()
        legal = mask.gather(1, actions[:, None])[:, 0] | self._needs_reset
        if not bool(legal.all()):
            bad = torch.nonzero(~legal).flatten().tolist()
            shown = "; ".join(
                f"env {i}: action {int(actions[i])} ({self.describe_action(int(actions[i]))})"
                for i in bad[:5]
            )
            raise ValueError(
                f"masked TannerEdit action — {shown}; a toggle must keep every row weight in "
                f"[1, {self.row_cap}] and column weight in [1, {self.col_cap}] "
                "(see info['action_mask'])"
            )
        stop = (actions == self.edges) & ~self._needs_reset
        toggle = ~stop & ~self._needs_reset
        index = actions.clamp(max=self.edges - 1)
        flat = self.H.reshape(self.num_envs, -1)
        rows = torch.arange(self.num_envs, device=self.device)
        flat[rows, index] ^= toggle
        before = self.score
        self._refresh()
        self.t += toggle.long()
        reward = torch.where(self._needs_reset, 0.0, self.score - before)
        truncated = ~stop & (self.t >= self.max_steps)
        return reward.float(), stop, truncated, self._info()

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

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"H": self.H, "t": self.t, "start_score": self.start_score}

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        self.H = state["H"].clone()
        self.t = state["t"].clone()
        self.start_score = state["start_score"].clone()
        self._refresh()
