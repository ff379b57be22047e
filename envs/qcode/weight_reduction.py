"""The weight-reduction environment: apply Hastings' and Sabo et al.'s moves to a CSS code.

Sources: M. B. Hastings, "On quantum weight reduction" (arXiv 2102.10030); Sabo et al.,
"Weight-reduced stabilizer codes with lower overhead" (PRX Quantum 5, 040302, 2024). The moves
themselves are :mod:`rlsuite.envs.qcode.moves`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.qcode import moves
from rlsuite.envs.qcode.codes import load_code, named_code
from rlsuite.envs.qcode.css import CSSCode
from rlsuite.envs.qcode.distance import estimate_distance, exact_distance

from rlsuite import keyed_random
from rlsuite.vector import BatchedVectorEnv, Info

SIDES = ("x", "z")
# l ∈ {2, …, 6}: the pipeline needs 6 layers to bring HGP(Hamming) to weight 6 after coning
LAYERS = tuple(range(moves.MIN_LAYERS, moves.MAX_LAYERS + 1))
THICKEN_RULES = ("spread", "cone")
HISTOGRAM_BINS = 16  # weights / degrees 1..15 and ≥ 16


def _resolve(code: str | Path | CSSCode) -> CSSCode:
    if isinstance(code, CSSCode):
        return code
    text = str(code)
    if text.endswith((".npz", ".alist")) or Path(text).exists():
        return load_code(text)
    return named_code(text)


def excess(code: CSSCode, w_target: int, q_target: int) -> float:
    """``Σ_checks max(0, w − w_target) + Σ_qubits,sides max(0, q − q_target)``."""
    total = 0
    for h in (code.hx.astype(np.int64), code.hz.astype(np.int64)):
        total += np.maximum(h.sum(1) - w_target, 0).sum() + np.maximum(h.sum(0) - q_target, 0).sum()
    return float(total)


class WeightReductionVectorEnv(BatchedVectorEnv):
    """Reduce the check weight and qubit degree of a CSS code with weight-reduction moves.

    **Description.** Each episode starts from a CSS code (``code``: a name such as
    ``"hgp:hamming:3"`` for the hypergraph product of the Hamming [7,4,3] code, ``"bb72"``, a
    ``.npz``/``.alist`` file, a :class:`~rlsuite.envs.qcode.css.CSSCode`, or a list of these,
    one drawn per episode from the reset seed). Each step applies one move of
    :mod:`rlsuite.envs.qcode.moves`: *copying* a qubit (its checks on one side move onto a
    repetition chain of copies), *gauging* a check (split into weight-3 checks with new qubits),
    *thickening* (``l`` ∈ {2, …, 6} layers — 6 is what the pipeline needs to reach weight 6 on
    HGP(Hamming) — with heights by rule ``"spread"`` or ``"cone"``, which balances the X weights
    coning will add), *coning* a Z check (replaced by weight-≤ 6 pieces on a cellulation of its
    check graph), or *stop*. Every move
    keeps ``Hx·Hzᵀ = 0`` and ``k``; the goal is max check weight ≤ ``w_target`` (6) and max qubit
    degree ≤ ``q_target`` (6) at a low qubit overhead and without losing distance.

    Codes change shape as they grow, so each env's move is applied to its own numpy matrices
    (one call per env per step; the moves are local edits); the distance estimate for the whole
    batch then runs as one batched GF(2) computation on matrices padded to the maxima.

    **State.** ``padded_matrices()`` — ``Hx``, ``Hz`` padded to ``max_checks × max_qubits``
    (default: 10 × the largest starting code's checks and qubits) — and ``codes`` (the
    current :class:`CSSCode` of each env).

    **Action space.** ``Discrete(A)``, in blocks: copy qubit ``q`` on side X, then Z
    (``max_qubits`` each); gauge check ``c`` on side X, then Z (``max_checks`` each); cone check
    ``c`` on side Z (``max_checks``); thicken with each
    (side, layers, heights rule) of ``SIDES × {2, …, 6} × ("spread", "cone")``; stop.
    ``describe_action(a)`` names an action. ``info["action_mask"]`` allows exactly the moves that
    change the code (copy: degree ≥ 2; gauge: weight ≥ 4; cone: where its X checks meet it in 0
    or 2 qubits and its check graph is connected; thicken: always) and keep it within
    the maxima; a masked action raises a ``ValueError`` naming it.

    **Observation space.** ``Box(0, 1, (4 · 16 + 12,), float32)``: for X checks, Z checks,
    X qubit degrees and Z qubit degrees, the share of checks (qubits) with weight (degree)
    1, 2, …, 15, ≥ 16; then ``n / max_qubits``, ``mx / max_checks``, ``mz / max_checks``,
    ``k / n``, ``d_est / d0 / 2``, the four maxima (X/Z check weight, X/Z qubit degree) / 32,
    ``n0 / n``, whether the targets are met, and the fraction of steps left (clipped to [0, 1]).

    **Reward.** ``ΔE − overhead_penalty · Δn / n0 − distance_penalty · max(0, d_prev − d) / d0``
    with ``E`` the excess weight ``Σ_checks max(0, w − w_target) + Σ_qubits max(0, q −
    q_target)`` (both sides; ``ΔE`` is its decrease), ``n0`` and ``d0`` the starting code's;
    on success a bonus ``success_bonus · (d / d0) / (n / n0)``.

    **Distance.** ``info["distance"]`` is the random-information-set estimate after each move
    (``distance_trials`` trials; an **upper bound** on the true distance,
    ``info["distance_is_upper_bound"] = 1``); at the end of an episode it is exact (qldpc,
    ``[qcode]`` extra) when the code has at most ``exact_distance_max_qubits`` qubits, and
    ``info["distance_exact"]`` says which was used.

    **Episode end.** Terminated on success (targets met), on failure (the distance estimate
    reaches 1) or on stop; truncated after ``max_steps`` moves.
    """

    has_action_mask = True
    episode_metrics: ClassVar[tuple[str, ...]] = (
        "n",
        "distance",
        "max_check_weight",
        "max_qubit_degree",
        "success",
    )

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        *,
        code: str | Path | CSSCode | Sequence[str | Path | CSSCode] = "hgp:hamming:3",
        growth: int = 10,
        max_qubits: int | None = None,
        max_checks: int | None = None,
        w_target: int = 6,
        q_target: int = 6,
        overhead_penalty: float = 1.0,
        distance_penalty: float = 1.0,
        success_bonus: float = 10.0,
        max_steps: int = 100,
        distance_trials: int = 4,
        exact_distance_max_qubits: int = 200,
    ) -> None:
        super().__init__(num_envs, device)
        choices = [code] if isinstance(code, (str, Path, CSSCode)) else list(code)
        if not choices:
            raise ValueError("code must name at least one starting code")
        self.starts = [_resolve(c) for c in choices]
        for start in self.starts:
            if start.k == 0:
                raise ValueError(f"starting code {start.name} encodes no logical qubit (k = 0)")
        for name, value in (
            ("growth", growth),
            ("max_steps", max_steps),
            ("w_target", w_target),
            ("q_target", q_target),
            ("distance_trials", distance_trials),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.max_qubits = max_qubits or growth * max(c.n for c in self.starts)
        self.max_checks = max_checks or growth * max(
            max(c.hx.shape[0], c.hz.shape[0]) for c in self.starts
        )
        if any(
            c.n > self.max_qubits or max(c.hx.shape[0], c.hz.shape[0]) > self.max_checks
            for c in self.starts
        ):
            raise ValueError("max_qubits / max_checks are smaller than a starting code")
        self.w_target, self.q_target = w_target, q_target
        self.overhead_penalty, self.distance_penalty = (
            float(overhead_penalty),
            float(distance_penalty),
        )
        self.success_bonus, self.max_steps = float(success_bonus), max_steps
        self.distance_trials, self.exact_distance_max_qubits = (
            distance_trials,
            exact_distance_max_qubits,
        )
        self._warned_no_qldpc = False
        self._start_distances = [self._exact_or_estimate(c)[0] for c in self.starts]
        Q, C = self.max_qubits, self.max_checks
        self._blocks = {
            "copy": 2 * Q,
            "gauge": 2 * C,
            "cone": C,
            "thicken": len(SIDES) * len(LAYERS) * len(THICKEN_RULES),
            "stop": 1,
        }
        self.num_actions = sum(self._blocks.values())
        self.single_observation_space = spaces.Box(0.0, 1.0, (4 * HISTOGRAM_BINS + 12,), np.float32)
        self.single_action_space = spaces.Discrete(self.num_actions)
        self._finish_spaces()
        B = num_envs
        self.codes: list[CSSCode] = [self.starts[0]] * B
        self.start_index = np.zeros(B, dtype=np.int64)
        self.t = np.zeros(B, dtype=np.int64)
        self.distance = np.full(B, self._start_distances[0])
        self.distance_exact = np.zeros(B, dtype=bool)
        self._masks: np.ndarray | None = None

    # -- moves and masks ----------------------------------------------------------------------
    def action_to_move(self, action: int) -> moves.Move | None:
        """The move of action ``action`` (``None`` for stop)."""
        Q, C = self.max_qubits, self.max_checks
        a = int(action)
        if a < 2 * Q:
            return moves.Move.copy(a % Q, SIDES[a // Q])
        a -= 2 * Q
        if a < 2 * C:
            return moves.Move.gauge(a % C, SIDES[a // C])
        a -= 2 * C
        if a < C:
            return moves.Move.cone(a, "z")
        a -= C
        if a < self._blocks["thicken"]:
            side, rest = divmod(a, len(LAYERS) * len(THICKEN_RULES))
            layers, rule = divmod(rest, len(THICKEN_RULES))
            return moves.Move.thicken(LAYERS[layers], heights=THICKEN_RULES[rule], side=SIDES[side])
        return None

    def move_to_action(self, move: moves.Move | None) -> int:
        """The action index of ``move`` (``None`` = stop); the inverse of :meth:`action_to_move`."""
        Q, C = self.max_qubits, self.max_checks
        if move is None:
            return self.num_actions - 1
        side = SIDES.index(move.side)
        if move.kind == "copy":
            return side * Q + move.index
        if move.kind == "gauge":
            return 2 * Q + side * C + move.index
        if move.kind == "cone":
            return 2 * Q + 2 * C + move.index
        rule = THICKEN_RULES.index(str(move.heights))
        block = (side * len(LAYERS) + LAYERS.index(move.layers)) * len(THICKEN_RULES) + rule
        return 2 * Q + 3 * C + block

    def describe_action(self, action: int) -> str:
        move = self.action_to_move(action)
        return "stop" if move is None else str(move)

    def _mask_one(self, code: CSSCode) -> np.ndarray:
        Q, C = self.max_qubits, self.max_checks
        mask = np.zeros(self.num_actions, dtype=bool)
        for s, side_matrix in enumerate((code.hx.astype(np.int64), code.hz.astype(np.int64))):
            degree = side_matrix.sum(0)  # copies: t - 1 new qubits and side checks
            fits = (code.n + degree - 1 <= Q) & (side_matrix.shape[0] + degree - 1 <= C)
            mask[s * Q : s * Q + code.n] = (degree >= 2) & fits
            weight = side_matrix.sum(1)  # gauging: w - 3 new qubits and side checks
            fits = (code.n + weight - 3 <= Q) & (side_matrix.shape[0] + weight - 3 <= C)
            offset = 2 * Q + s * C
            mask[offset : offset + side_matrix.shape[0]] = (weight >= 4) & fits
        offset = 2 * Q + 2 * C
        for c in range(code.hz.shape[0]):
            move = moves.Move.cone(c, "z")
            mask[offset + c] = moves.is_legal(code, move) and self.fits(code, move)
        offset += C
        n, mx, mz = code.n, code.hx.shape[0], code.hz.shape[0]
        for a in range(self._blocks["thicken"]):
            side, rest = divmod(a, len(LAYERS) * len(THICKEN_RULES))
            ell = LAYERS[rest // len(THICKEN_RULES)]
            # moves.predicted_size of a thickening, without checking the heights rule
            if SIDES[side] == "z":
                size = (n * ell + mx * (ell - 1), mx * ell, mz + n * (ell - 1))
            else:
                size = (n * ell + mz * (ell - 1), mx + n * (ell - 1), mz * ell)
            mask[offset + a] = size[0] <= Q and max(size[1:]) <= C
        mask[-1] = True
        return mask

    def fits(self, code: CSSCode, move: moves.Move) -> bool:
        """Whether ``move`` keeps ``code`` within the padding (``max_qubits``, ``max_checks``)."""
        n, mx, mz = moves.predicted_size(code, move)
        return n <= self.max_qubits and max(mx, mz) <= self.max_checks

    def action_masks(self) -> torch.Tensor:
        return torch.as_tensor(
            np.stack([self._mask_one(c) for c in self.codes]), device=self.device
        )

    def always_legal_actions(self) -> np.ndarray:
        """Stop (the last action) is legal in every state."""
        legal = np.zeros(self.single_action_space.n, dtype=bool)
        legal[-1] = True
        return legal

    # -- distances --------------------------------------------------------------------------
    def padded_matrices(
        self, codes: Sequence[CSSCode] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(hx, hz, num_qubits)``: the codes' matrices padded with zeros to the maxima."""
        codes = self.codes if codes is None else codes
        B, Q, C = len(codes), self.max_qubits, self.max_checks
        hx = np.zeros((B, C, Q), dtype=bool)
        hz = np.zeros((B, C, Q), dtype=bool)
        for i, code in enumerate(codes):
            hx[i, : code.hx.shape[0], : code.n] = code.hx
            hz[i, : code.hz.shape[0], : code.n] = code.hz
        qubits = torch.tensor([c.n for c in codes], device=self.device)
        return (
            torch.as_tensor(hx, device=self.device),
            torch.as_tensor(hz, device=self.device),
            qubits,
        )

    def _estimate(self, codes: Sequence[CSSCode], keys: torch.Tensor | None = None) -> np.ndarray:
        """Batched distance estimates, padded only to the largest code of the batch; ``keys``
        (one per code) make each estimate independent of the batch."""
        n = max(c.n for c in codes)
        m = max(max(c.hx.shape[0], c.hz.shape[0]) for c in codes)
        hx = np.zeros((len(codes), m, n), dtype=bool)
        hz = np.zeros((len(codes), m, n), dtype=bool)
        for i, code in enumerate(codes):
            hx[i, : code.hx.shape[0], : code.n] = code.hx
            hz[i, : code.hz.shape[0], : code.n] = code.hz
        qubits = torch.tensor([c.n for c in codes], device=self.device)
        d = estimate_distance(
            torch.as_tensor(hx, device=self.device),
            torch.as_tensor(hz, device=self.device),
            num_qubits=qubits,
            trials=self.distance_trials,
            keys=keys if keys is not None else torch.arange(len(codes), device=self.device),
        )
        return d.cpu().numpy()

    def _exact_or_estimate(self, code: CSSCode, key: int = 0) -> tuple[float, bool]:
        if code.n <= self.exact_distance_max_qubits:
            try:
                return float(exact_distance(code)), True
            except ModuleNotFoundError as err:
                if not self._warned_no_qldpc:
                    warnings.warn(
                        f"{err}; WeightReduction uses the distance estimate (an upper bound) "
                        "instead (info['distance_exact'] = 0)",
                        stacklevel=2,
                    )
                    self._warned_no_qldpc = True
        return float(self._estimate([code], torch.tensor([key], device=self.device))[0]), False

    def _keys(self, ids: Sequence[int]) -> torch.Tensor:
        index = torch.as_tensor(list(ids), dtype=torch.int64, device=self.device)
        t = torch.as_tensor(self.t[list(ids)], device=self.device)
        return keyed_random.combine(self.env_seeds[index], self.episode_index[index], t)

    # -- the env ----------------------------------------------------------------------------
    def _reset_envs(self, ids: torch.Tensor) -> None:
        if len(ids) == 0:
            return
        keys = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids])
        draws = keyed_random.uniform(keys, 1)[:, 0].cpu().numpy()
        for env, u in zip(ids.tolist(), draws, strict=True):
            index = min(int(u * len(self.starts)), len(self.starts) - 1)
            self.start_index[env] = index
            self.codes[env] = self.starts[index]
            self.t[env] = 0
            self.distance[env] = self._start_distances[index]
            self.distance_exact[env] = False
        self._masks = None

    def _observe(self) -> torch.Tensor:
        return torch.as_tensor(
            np.stack([self._features(i) for i in range(self.num_envs)]), device=self.device
        )

    def _features(self, i: int) -> np.ndarray:
        code, start = self.codes[i], self.starts[self.start_index[i]]
        parts = []
        for values in (code.hx.sum(1), code.hz.sum(1), code.hx.sum(0), code.hz.sum(0)):
            clipped = np.clip(values, 0, HISTOGRAM_BINS)
            hist = np.bincount(clipped, minlength=HISTOGRAM_BINS + 1)[1:]
            parts.append(hist / max(len(values), 1))
        d0 = self._start_distances[self.start_index[i]]
        scalars = [
            code.n / self.max_qubits,
            code.hx.shape[0] / self.max_checks,
            code.hz.shape[0] / self.max_checks,
            start.k / code.n,  # every move keeps k
            min(self.distance[i] / d0 / 2, 1.0),
            code.hx.sum(1).max(initial=0) / 32,
            code.hz.sum(1).max(initial=0) / 32,
            code.hx.sum(0).max(initial=0) / 32,
            code.hz.sum(0).max(initial=0) / 32,
            start.n / code.n,
            float(self._success(code)),
            (self.max_steps - self.t[i]) / self.max_steps,
        ]
        return np.clip(np.concatenate([*parts, scalars]), 0.0, 1.0).astype(np.float32)

    def _success(self, code: CSSCode) -> bool:
        return code.max_check_weight <= self.w_target and code.max_qubit_degree <= self.q_target

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        B = self.num_envs
        acting = ~self._needs_reset.cpu().numpy()
        acts = actions.cpu().numpy()
        mask = self.action_masks().cpu().numpy()
        bad = [i for i in range(B) if acting[i] and not mask[i, acts[i]]]
        if bad:
            shown = "; ".join(
                f"env {i}: action {int(acts[i])} ({self.describe_action(int(acts[i]))})"
                for i in bad[:5]
            )
            raise ValueError(
                f"masked WeightReduction action — {shown}; a move must change the code and keep it "
                f"within {self.max_qubits} qubits and {self.max_checks} checks per side "
                "(see info['action_mask'])"
            )
        reward = np.zeros(B)
        stopped = np.zeros(B, dtype=bool)
        moved = []
        before = [excess(c, self.w_target, self.q_target) for c in self.codes]
        old_n = np.array([c.n for c in self.codes])
        for i in range(B):
            if not acting[i]:
                continue
            move = self.action_to_move(int(acts[i]))
            if move is None:
                stopped[i] = True
                continue
            self.codes[i] = moves.apply_move(self.codes[i], move)
            self.t[i] += 1
            moved.append(i)
        self._masks = None
        old_d = self.distance.copy()
        if moved:
            self.distance[moved] = self._estimate([self.codes[i] for i in moved], self._keys(moved))
        n0 = np.array([self.starts[j].n for j in self.start_index])
        d0 = np.array([self._start_distances[j] for j in self.start_index])
        after = np.array([excess(c, self.w_target, self.q_target) for c in self.codes])
        new_n = np.array([c.n for c in self.codes])
        success = np.array([self._success(c) for c in self.codes]) & acting
        failure = (self.distance <= 1) & acting
        reward = (np.array(before) - after) - self.overhead_penalty * (new_n - old_n) / n0
        reward -= self.distance_penalty * np.maximum(old_d - self.distance, 0) / d0
        terminated = (success | failure | stopped) & acting
        truncated = ~terminated & (self.t >= self.max_steps) & acting
        for i in np.flatnonzero(terminated | truncated):  # exact distance where affordable
            key = int(self._keys([i])[0])
            self.distance[i], self.distance_exact[i] = self._exact_or_estimate(self.codes[i], key)
        bonus = self.success_bonus * (self.distance / d0) / (new_n / n0)
        reward = np.where(success, reward + bonus, reward) * acting
        k = np.array([self.starts[j].k for j in self.start_index], dtype=np.float64)
        for i in np.flatnonzero(terminated | truncated):  # moves keep k; recomputed at the end
            k[i] = self.codes[i].k
        info = {
            "n": new_n.astype(np.float64),
            "k": k,
            "distance": self.distance.copy(),
            "distance_exact": self.distance_exact.astype(np.float64),
            "distance_is_upper_bound": (~self.distance_exact).astype(np.float64),
            "max_check_weight": np.array(
                [c.max_check_weight for c in self.codes], dtype=np.float64
            ),
            "max_qubit_degree": np.array(
                [c.max_qubit_degree for c in self.codes], dtype=np.float64
            ),
            "excess": after,
            "success": success.astype(np.float64),
        }
        as_t = lambda a: torch.as_tensor(a, device=self.device)  # noqa: E731
        return (
            as_t(reward).float(),
            as_t(terminated),
            as_t(truncated),
            {k: as_t(v) for k, v in info.items()},
        )

    # -- checkpoints --------------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        hx, hz, qubits = self.padded_matrices()
        as_t = lambda a: torch.as_tensor(np.asarray(a), device=self.device)  # noqa: E731
        return {
            "hx": hx,
            "hz": hz,
            "num_qubits": qubits,
            "num_x_checks": as_t([c.hx.shape[0] for c in self.codes]),
            "num_z_checks": as_t([c.hz.shape[0] for c in self.codes]),
            "start_index": as_t(self.start_index),
            "t": as_t(self.t),
            "distance": as_t(self.distance),
            "distance_exact": as_t(self.distance_exact),
        }

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        shape = (self.num_envs, self.max_checks, self.max_qubits)
        if tuple(state["hx"].shape) != shape or tuple(state["hz"].shape) != shape:
            raise ValueError(
                f"checkpointed codes are padded to {tuple(state['hx'].shape)[1:]}, this env to "
                f"{shape[1:]} (max_checks, max_qubits)"
            )
        hx, hz = state["hx"].cpu().numpy(), state["hz"].cpu().numpy()
        n, mx, mz = (state[k].cpu().numpy() for k in ("num_qubits", "num_x_checks", "num_z_checks"))
        self.start_index = state["start_index"].cpu().numpy().astype(np.int64)
        self.codes = [
            CSSCode(
                hx[i, : mx[i], : n[i]],
                hz[i, : mz[i], : n[i]],
                name=f"{self.starts[self.start_index[i]].name}|restored",
            )
            for i in range(self.num_envs)
        ]
        self.t = state["t"].cpu().numpy().astype(np.int64)
        self.distance = state["distance"].cpu().numpy().astype(np.float64)
        self.distance_exact = state["distance_exact"].cpu().numpy().astype(bool)
        self._masks = None
