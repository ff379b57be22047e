"""The weight-reduction environment: apply Hastings' and Sabo et al.'s moves to a CSS code.

Sources: M. B. Hastings, "On quantum weight reduction" (arXiv 2102.10030); Sabo et al.,
"Weight-reduced stabilizer codes with lower overhead" (PRX Quantum 5, 040302, 2024). The moves
themselves are :mod:`rlsuite.envs.qcode.moves`.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.qcode import moves
from rlsuite.envs.qcode.codes import load_code, named_code
from rlsuite.envs.qcode.css import CSSCode
from rlsuite.envs.qcode.distance import estimate_distance, exact_distance
from scipy import sparse
from scipy.sparse import csgraph

from rlsuite import keyed_random
from rlsuite.model import BatchState, ModelStep
from rlsuite.vector import BatchedVectorEnv, Info

SIDES = ("x", "z")
# l ∈ {2, …, 6}: the pipeline needs 6 layers to bring HGP(Hamming) to weight 6 after coning
LAYERS = tuple(range(moves.MIN_LAYERS, moves.MAX_LAYERS + 1))
THICKEN_RULES = ("spread", "cone")
HISTOGRAM_BINS = 16  # weights / degrees 1..15 and ≥ 16
CACHE_SIZE = 4096  # codes whose action mask and distance estimate an env keeps (oldest out)


def _resolve(code: str | Path | CSSCode) -> CSSCode:
    if isinstance(code, CSSCode):
        return code
    text = str(code)
    if text.endswith((".npz", ".alist")) or Path(text).exists():
        return load_code(text)
    return named_code(text)


def code_key(code: CSSCode) -> int:
    """A 63-bit hash of a code's matrices (shapes and entries): the key of its distance
    estimate, so the same code always gets the same estimate (computed once per code object:
    its matrices are read-only)."""
    cached = code.__dict__.get("_code_key")
    if cached is None:
        cached = code.__dict__["_code_key"] = _content_hash(code)
    return cached


def _content_hash(code: CSSCode) -> int:
    digest = hashlib.blake2b(digest_size=8)
    for h in (code.hx, code.hz):
        digest.update(np.asarray(h.shape, dtype=np.int64).tobytes())
        digest.update(np.packbits(h.astype(bool), axis=None).tobytes())
    return int.from_bytes(digest.digest(), "little") >> 1


@dataclass
class WeightReductionState(BatchState):
    """A batch of WeightReduction positions (:class:`rlsuite.model.BatchState`): the codes'
    matrices padded to the env's ``max_checks × max_qubits`` and what the rules read besides."""

    hx: torch.Tensor  # (B, max_checks, max_qubits) bool, zero beyond the code's own size
    hz: torch.Tensor  # (B, max_checks, max_qubits) bool
    num_qubits: torch.Tensor  # (B,) int64
    num_x_checks: torch.Tensor  # (B,) int64
    num_z_checks: torch.Tensor  # (B,) int64
    start_index: torch.Tensor  # (B,) int64: the starting code (an index into env.starts)
    start_key: torch.Tensor  # (B,) int64: code_key of that starting code
    t: torch.Tensor  # (B,) int64: moves so far (stop is not a move)
    distance: torch.Tensor  # (B,) float64: the estimate (exact at an episode's end, if affordable)
    distance_exact: torch.Tensor  # (B,) bool
    stopped: torch.Tensor  # (B,) bool: the stop action ended the episode
    ended: torch.Tensor  # (B,) bool: the episode terminated (stop, success or failure)

    @property
    def episode_step(self) -> torch.Tensor:
        """(B,) int64: every step is a move or the final stop."""
        return self.t + self.stopped.long()


@dataclass
class _Positions:
    """Positions as the moves need them: one numpy :class:`CSSCode` each, and numpy arrays."""

    codes: list[CSSCode]
    start_index: np.ndarray  # int64
    t: np.ndarray  # int64
    distance: np.ndarray  # float64
    distance_exact: np.ndarray  # bool
    stopped: np.ndarray  # bool
    ended: np.ndarray  # bool

    def copy(self) -> _Positions:
        return _Positions(
            list(self.codes),
            *(getattr(self, k).copy() for k in _ARRAYS),
        )


_ARRAYS = ("start_index", "t", "distance", "distance_exact", "stopped", "ended")


def excess(code: CSSCode, w_target: int, q_target: int) -> float:
    """``Σ_checks max(0, w − w_target) + Σ_qubits,sides max(0, q − q_target)``."""
    total = 0
    for h in (code.hx.astype(np.int64), code.hz.astype(np.int64)):
        total += np.maximum(h.sum(1) - w_target, 0).sum() + np.maximum(h.sum(0) - q_target, 0).sum()
    return float(total)


class WeightReductionVectorEnv(BatchedVectorEnv):
    """Reduce the check weight and qubit degree of a CSS code with weight-reduction moves.

    Sources: Hastings, "On quantum weight reduction" (arXiv 2102.10030); Sabo et al.,
    "Weight-reduced stabilizer codes with lower overhead" (PRX Quantum 5, 040302, 2024).

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
    ``info["distance_exact"]`` says which was used. The estimate's random information sets are
    keyed by a hash of the code's matrices (:func:`code_key`), not by the seed, episode and
    step: the same code always gets the same estimate, in any env, batch or episode, so the
    same state and action always give the same reward. Each env caches the estimates and
    action masks of the last 4096 codes it met by that key (a search that revisits a code
    pays nothing); masks are read-only arrays.

    **Episode end.** Terminated on success (targets met), on failure (the distance estimate
    reaches 1) or on stop; truncated after ``max_steps`` moves.

    **Arguments** (keyword-only; the vector env also takes ``num_envs`` and ``device``):

    | argument                      | default           | meaning                                     |
    |-------------------------------|-------------------|---------------------------------------------|
    | ``code``                      | ``"hgp:hamming:3"`` | starting code(s): a name, file, ``CSSCode`` or a list (one drawn per episode) |
    | ``growth``                    | 10                | default maxima: ``growth ×`` the largest starting code's qubits and checks |
    | ``max_qubits``, ``max_checks``| from ``growth``   | padding of the state; moves beyond them are masked |
    | ``w_target``, ``q_target``    | 6, 6              | target max check weight and max qubit degree |
    | ``overhead_penalty``          | 1.0               | weight of ``Δn / n0`` in the reward          |
    | ``distance_penalty``          | 1.0               | weight of the distance lost, ``/ d0``        |
    | ``success_bonus``             | 10.0              | scale of the bonus when the targets are met  |
    | ``max_steps``                 | 100               | moves per episode (truncation)               |
    | ``distance_trials``           | 4                 | information sets of each distance estimate   |
    | ``exact_distance_max_qubits`` | 200               | exact distance (qldpc) at the end up to this ``n`` |

    **Search model** (:mod:`rlsuite.model`). ``get_state()`` returns a
    :class:`WeightReductionState`: ``hx``, ``hz`` padded to ``(max_checks, max_qubits)`` with the
    code's sizes, the starting code (``start_index`` and its ``start_key``), the moves ``t``,
    the ``distance`` (and whether it is exact), ``stopped`` and ``ended``; its
    ``episode_step`` is ``t`` plus 1 once stopped, as the env counts. ``step_from(states,
    actions)`` is the env's own transition (:meth:`transition`) on any batch of states, which
    it leaves untouched; an ended state stays as it is (reward 0, not terminated again). It
    has no time limit — truncation after ``max_steps`` is the env's — but a state whose ``t``
    reaches ``max_steps`` gets the end-of-episode exact distance, as the env's last state does.
    The only randomness, the distance estimate, is keyed by the code's content. A state of an
    env with other starting codes or padding is refused with a ``ValueError``. Codes rebuilt
    from a state carry no move history (``code.info``), which the ``pipeline`` baseline reads.
    """

    has_action_mask = True
    has_model = True
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
        self._mask_cache: dict[int, np.ndarray] = {}
        self._distance_cache: dict[int, float] = {}
        self._start_distances = [self._exact_or_estimate(c)[0] for c in self.starts]
        self._start_keys = [code_key(c) for c in self.starts]
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
        self.stopped = np.zeros(B, dtype=bool)
        self.ended = np.zeros(B, dtype=bool)

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
        """The action mask of ``code`` (read-only), cached by its content (:func:`code_key`):
        the same array as :meth:`mask_reference`, computed with sparse overlaps and one
        connected-components pass for the conings."""
        key = code_key(code)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = self._compute_mask(code)
            mask.setflags(write=False)
            if len(self._mask_cache) >= CACHE_SIZE:
                self._mask_cache.pop(next(iter(self._mask_cache)))
            self._mask_cache[key] = mask
        return mask

    def _compute_mask(self, code: CSSCode) -> np.ndarray:
        Q, C = self.max_qubits, self.max_checks
        mask = np.zeros(self.num_actions, dtype=bool)
        n, mz = code.n, code.hz.shape[0]
        for s, side_matrix in enumerate((code.hx, code.hz)):
            degree = side_matrix.sum(0, dtype=np.int64)  # copies: t - 1 new qubits and checks
            fits = (n + degree - 1 <= Q) & (side_matrix.shape[0] + degree - 1 <= C)
            mask[s * Q : s * Q + n] = (degree >= 2) & fits
            weight = side_matrix.sum(1, dtype=np.int64)  # gauging: w - 3 new qubits and checks
            fits = (n + weight - 3 <= Q) & (side_matrix.shape[0] + weight - 3 <= C)
            offset = 2 * Q + s * C
            mask[offset : offset + side_matrix.shape[0]] = (weight >= 4) & fits
        offset = 2 * Q + 2 * C
        mask[offset : offset + mz] = self._cone_mask(code)
        offset += C
        mask[offset : offset + self._blocks["thicken"]] = self._thicken_mask(code)
        mask[-1] = True
        return mask

    def _thicken_mask(self, code: CSSCode) -> np.ndarray:
        """Which thickenings (side × layers × heights rule) keep ``code`` within the padding:
        :func:`moves.predicted_size` of a thickening, without checking the heights rule."""
        n, mx, mz = code.n, code.hx.shape[0], code.hz.shape[0]
        legal = np.zeros(self._blocks["thicken"], dtype=bool)
        for a in range(len(legal)):
            side, rest = divmod(a, len(LAYERS) * len(THICKEN_RULES))
            ell = LAYERS[rest // len(THICKEN_RULES)]
            if SIDES[side] == "z":
                size = (n * ell + mx * (ell - 1), mx * ell, mz + n * (ell - 1))
            else:
                size = (n * ell + mz * (ell - 1), mx + n * (ell - 1), mz * ell)
            legal[a] = size[0] <= self.max_qubits and max(size[1:]) <= self.max_checks
        return legal

    def _cone_mask(self, code: CSSCode) -> np.ndarray:
        """``(mz,)``: which Z checks coning accepts (``moves.is_legal``: every X check meets
        it in 0 or 2 qubits and its check graph is connected) and keeps within the padding.
        The graphs of all Z checks are one graph on the nonzeros of ``Hz``; a check is
        connected when its vertices carry one component label. Fitting uses the bound ``J ≤
        (E − V + 1)·⌈(V − 6)/4⌉`` on the chords (each basis cycle is simple, so ``L ≤ V``, and
        every chord shortens a cycle by 4), its failure without chords (``J = 0``), and the exact
        :meth:`fits` only between the two."""
        hx, hz = code.hx, code.hz
        n, mx, mz = code.n, hx.shape[0], hz.shape[0]
        x_rows, x_cols = np.nonzero(hx)
        z_rows, z_cols = np.nonzero(hz)  # row-major: each check's vertices are contiguous
        overlap = (
            sparse.csr_matrix((np.ones(len(x_rows)), (x_rows, x_cols)), shape=(mx, n))
            @ sparse.csr_matrix((np.ones(len(z_rows)), (z_rows, z_cols)), shape=(mz, n)).T
        ).tocoo()  # (mx, mz) counts
        odd_overlap = np.zeros(mz, dtype=bool)
        odd_overlap[overlap.col[overlap.data != 2]] = True
        edges = np.bincount(overlap.col, minlength=mz)  # E: X checks meeting each Z check
        # triples (X check, Z vertex) sharing a qubit: Z vertices sorted by qubit
        by_qubit = np.argsort(z_cols, kind="stable")
        z_degree = np.bincount(z_cols, minlength=n)
        first = np.concatenate([[0], np.cumsum(z_degree)])
        reps = z_degree[x_cols]
        x_of = np.repeat(x_rows, reps)
        starts = np.repeat(first[x_cols], reps)
        within = np.arange(len(x_of)) - np.repeat(np.cumsum(reps) - reps, reps)
        vertex = by_qubit[starts + within]
        check = z_rows[vertex]
        order = np.lexsort((vertex, check, x_of))
        pair = (x_of[order] * mz + check[order]).astype(np.int64)
        vertex = vertex[order]
        # consecutive triples of one (X check, Z check) pair with overlap 2 are an edge
        same = pair[1:] == pair[:-1]
        graph = sparse.coo_matrix(
            (np.ones(int(same.sum())), (vertex[:-1][same], vertex[1:][same])),
            shape=(len(z_rows), len(z_rows)),
        )
        _, labels = csgraph.connected_components(graph, directed=False)
        pieces = np.bincount(np.unique(z_rows * len(z_rows) + labels) // len(z_rows), minlength=mz)
        legal = ~odd_overlap & (pieces == 1)
        weight = hz.sum(1, dtype=np.int64)  # V
        cycles = edges - weight + 1
        chords = cycles * np.maximum(-(-(weight - moves.CONE_WEIGHT) // 4), 0)
        surely_fits = (
            (n + edges + chords <= self.max_qubits)
            & (mx + cycles + chords <= self.max_checks)
            & (mz + weight - 1 <= self.max_checks)
        )
        surely_not = (  # even without chords (J = 0) it does not fit
            (n + edges > self.max_qubits)
            | (mx + cycles > self.max_checks)
            | (mz + weight - 1 > self.max_checks)
        )
        legal &= ~surely_not
        for c in np.flatnonzero(legal & ~surely_fits):
            legal[c] = self.fits(code, moves.Move.cone(int(c), "z"))
        return legal

    def mask_reference(self, code: CSSCode) -> np.ndarray:
        """The action mask of ``code`` from the move functions themselves (``moves.is_legal``
        and ``fits`` per coning): slow, the definition :meth:`_mask_one` is tested against."""
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
        mask[offset : offset + self._blocks["thicken"]] = self._thicken_mask(code)
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

    def _idle_actions(self) -> torch.Tensor:
        """Envs being reset play stop (no move, no distance to compute)."""
        return torch.full(
            (self.num_envs,), self.num_actions - 1, dtype=torch.int64, device=self.device
        )

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
        qubits = torch.tensor([c.n for c in codes], dtype=torch.int64, device=self.device)
        return (
            torch.as_tensor(hx, device=self.device),
            torch.as_tensor(hz, device=self.device),
            qubits,
        )

    def _estimate(self, codes: Sequence[CSSCode]) -> np.ndarray:
        """Distance estimates, each keyed by its code's content (:func:`code_key`), so
        independent of the batch: looked up in the env's cache, the others computed as one
        batch (:meth:`_estimate_batch`) and cached (the oldest of ``CACHE_SIZE`` dropped)."""
        keys = [code_key(c) for c in codes]
        found = {k: self._distance_cache[k] for k in keys if k in self._distance_cache}
        missing = {k: c for k, c in zip(keys, codes, strict=True) if k not in found}
        if missing:
            values = self._estimate_batch(list(missing.values()))
            for k, value in zip(missing, values, strict=True):
                found[k] = float(value)
                if len(self._distance_cache) >= CACHE_SIZE:
                    self._distance_cache.pop(next(iter(self._distance_cache)))
                self._distance_cache[k] = float(value)
        return np.array([found[k] for k in keys], dtype=np.float64)

    def _estimate_batch(self, codes: Sequence[CSSCode]) -> np.ndarray:
        """Batched distance estimates, padded only to the largest code of the batch."""
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
            keys=torch.tensor([code_key(c) for c in codes], device=self.device),
            check=False,  # CSSCode objects: validated, or built by moves that keep Hx·Hzᵀ = 0
        )
        return d.cpu().numpy()

    def _exact_or_estimate(self, code: CSSCode) -> tuple[float, bool]:
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
        return float(self._estimate([code])[0]), False

    # -- the rules --------------------------------------------------------------------------
    def transition(
        self, positions: _Positions, actions: np.ndarray, *, who: str = "env"
    ) -> tuple[_Positions, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One step of every position (pure: ``positions`` is left as it was).

        ``actions`` ``(B,)`` int, each legal under the position's mask (a ``ValueError`` names
        the others). Returns the next positions, the reward, ``terminated``, ``truncated``
        (``t`` reached ``max_steps``: the env's time limit, which also makes the distance
        exact) and the ``info`` arrays. An ended position stays as it is, with reward 0. The
        env's ``step`` and ``step_from`` both call this: one implementation of the rules."""
        B = len(positions.codes)
        live = ~positions.ended
        bad = [
            i
            for i in np.flatnonzero(live)
            if not self._mask_one(positions.codes[i])[int(actions[i])]
        ]
        if bad:
            shown = "; ".join(
                f"{who} {i}: action {int(actions[i])} ({self.describe_action(int(actions[i]))})"
                for i in bad[:5]
            )
            raise ValueError(
                f"masked WeightReduction action — {shown}; a move must change the code and keep it "
                f"within {self.max_qubits} qubits and {self.max_checks} checks per side "
                "(see info['action_mask'])"
            )
        new = positions.copy()
        stop = np.zeros(B, dtype=bool)
        moved = []
        for i in np.flatnonzero(live):
            move = self.action_to_move(int(actions[i]))
            if move is None:
                stop[i] = True
                continue
            new.codes[i] = moves.apply_move(positions.codes[i], move)
            new.t[i] += 1
            moved.append(i)
        if moved:
            new.distance[moved] = self._estimate([new.codes[i] for i in moved])
            new.distance_exact[moved] = False
        n0 = np.array([self.starts[j].n for j in new.start_index])
        d0 = np.array([self._start_distances[j] for j in new.start_index])
        before = np.array([excess(c, self.w_target, self.q_target) for c in positions.codes])
        after = np.array([excess(c, self.w_target, self.q_target) for c in new.codes])
        old_n = np.array([c.n for c in positions.codes])
        new_n = np.array([c.n for c in new.codes])
        success = np.array([self._success(c) for c in new.codes]) & live
        failure = (new.distance <= 1) & live
        reward = (before - after) - self.overhead_penalty * (new_n - old_n) / n0
        reward -= self.distance_penalty * np.maximum(positions.distance - new.distance, 0) / d0
        terminated = success | failure | stop
        truncated = ~terminated & (new.t >= self.max_steps) & live
        for i in np.flatnonzero((terminated | truncated) & ~new.distance_exact):
            new.distance[i], new.distance_exact[i] = self._exact_or_estimate(new.codes[i])
        bonus = self.success_bonus * (new.distance / d0) / (new_n / n0)
        reward = np.where(success, reward + bonus, reward) * live
        new.stopped |= stop
        new.ended |= terminated
        k = np.array([self.starts[j].k for j in new.start_index], dtype=np.float64)
        for i in np.flatnonzero(terminated | truncated):  # moves keep k; recomputed at the end
            k[i] = new.codes[i].k
        info = {
            "n": new_n.astype(np.float64),
            "k": k,
            "distance": new.distance.copy(),
            "distance_exact": new.distance_exact.astype(np.float64),
            "distance_is_upper_bound": (~new.distance_exact).astype(np.float64),
            "max_check_weight": np.array([c.max_check_weight for c in new.codes], dtype=np.float64),
            "max_qubit_degree": np.array([c.max_qubit_degree for c in new.codes], dtype=np.float64),
            "excess": after,
            "success": success.astype(np.float64),
        }
        return new, reward, terminated, truncated, info

    def features(self, positions: _Positions) -> np.ndarray:
        """``(B, D)`` float32: the observations of ``positions`` (see the class docstring)."""
        return np.stack([self._features(positions, i) for i in range(len(positions.codes))])

    def _features(self, positions: _Positions, i: int) -> np.ndarray:
        code = positions.codes[i]
        start = self.starts[positions.start_index[i]]
        parts = []
        for values in (code.hx.sum(1), code.hz.sum(1), code.hx.sum(0), code.hz.sum(0)):
            clipped = np.clip(values, 0, HISTOGRAM_BINS)
            hist = np.bincount(clipped, minlength=HISTOGRAM_BINS + 1)[1:]
            parts.append(hist / max(len(values), 1))
        d0 = self._start_distances[positions.start_index[i]]
        scalars = [
            code.n / self.max_qubits,
            code.hx.shape[0] / self.max_checks,
            code.hz.shape[0] / self.max_checks,
            start.k / code.n,  # every move keeps k
            min(positions.distance[i] / d0 / 2, 1.0),
            code.hx.sum(1).max(initial=0) / 32,
            code.hz.sum(1).max(initial=0) / 32,
            code.hx.sum(0).max(initial=0) / 32,
            code.hz.sum(0).max(initial=0) / 32,
            start.n / code.n,
            float(self._success(code)),
            (self.max_steps - positions.t[i]) / self.max_steps,
        ]
        return np.clip(np.concatenate([*parts, scalars]), 0.0, 1.0).astype(np.float32)

    def _success(self, code: CSSCode) -> bool:
        return code.max_check_weight <= self.w_target and code.max_qubit_degree <= self.q_target

    # -- the env ----------------------------------------------------------------------------
    def _positions(self) -> _Positions:
        return _Positions(self.codes, *(getattr(self, k) for k in _ARRAYS))

    def _assign(self, positions: _Positions, ids: Sequence[int] | None = None) -> None:
        """Put ``positions`` into the envs ``ids`` (all envs by default)."""
        ids = list(range(self.num_envs)) if ids is None else list(ids)
        for j, env in enumerate(ids):
            self.codes[env] = positions.codes[j]
        for name in _ARRAYS:
            getattr(self, name)[ids] = getattr(positions, name)

    def _reset_envs(self, ids: torch.Tensor) -> None:
        if len(ids) == 0:
            return
        keys = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids])
        draws = keyed_random.uniform(keys, 1)[:, 0].cpu().numpy()
        index = np.minimum((draws * len(self.starts)).astype(np.int64), len(self.starts) - 1)
        fresh = _Positions(
            [self.starts[j] for j in index],
            start_index=index,
            t=np.zeros(len(ids), dtype=np.int64),
            distance=np.array([self._start_distances[j] for j in index]),
            distance_exact=np.zeros(len(ids), dtype=bool),
            stopped=np.zeros(len(ids), dtype=bool),
            ended=np.zeros(len(ids), dtype=bool),
        )
        self._assign(fresh, ids.tolist())

    def _observe(self) -> torch.Tensor:
        return torch.as_tensor(self.features(self._positions()), device=self.device)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        new, reward, terminated, truncated, info = self.transition(
            self._positions(), actions.cpu().numpy()
        )
        self._assign(new)
        as_t = lambda a: torch.as_tensor(a, device=self.device)  # noqa: E731
        return (
            as_t(reward).float(),
            as_t(terminated),
            as_t(truncated),
            {k: as_t(v) for k, v in info.items()},
        )

    # -- the deterministic search model (rlsuite.model) ---------------------------------------
    def _to_state(self, positions: _Positions) -> WeightReductionState:
        hx, hz, qubits = self.padded_matrices(positions.codes)
        as_t = lambda a, dtype: torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)  # noqa: E731
        return WeightReductionState(
            hx=hx,
            hz=hz,
            num_qubits=qubits,
            num_x_checks=as_t([c.hx.shape[0] for c in positions.codes], torch.int64),
            num_z_checks=as_t([c.hz.shape[0] for c in positions.codes], torch.int64),
            start_index=as_t(positions.start_index, torch.int64),
            start_key=as_t([self._start_keys[j] for j in positions.start_index], torch.int64),
            t=as_t(positions.t, torch.int64),
            distance=as_t(positions.distance, torch.float64),
            distance_exact=as_t(positions.distance_exact, torch.bool),
            stopped=as_t(positions.stopped, torch.bool),
            ended=as_t(positions.ended, torch.bool),
        )

    def _from_state(self, state: WeightReductionState, suffix: str = "state") -> _Positions:
        hx, hz = state.hx.cpu().numpy(), state.hz.cpu().numpy()
        n, mx, mz, start = (
            getattr(state, k).cpu().numpy()
            for k in ("num_qubits", "num_x_checks", "num_z_checks", "start_index")
        )
        codes = [
            CSSCode(
                hx[i, : mx[i], : n[i]],
                hz[i, : mz[i], : n[i]],
                name=f"{self.starts[start[i]].name}|{suffix}",
            )
            for i in range(len(state))
        ]
        return _Positions(
            codes,
            start_index=start.astype(np.int64),
            t=state.t.cpu().numpy().astype(np.int64),
            distance=state.distance.cpu().numpy().astype(np.float64),
            distance_exact=state.distance_exact.cpu().numpy().astype(bool),
            stopped=state.stopped.cpu().numpy().astype(bool),
            ended=state.ended.cpu().numpy().astype(bool),
        )

    def _get_model_state(self, ids: torch.Tensor) -> WeightReductionState:
        now = self._positions()
        picked = ids.tolist()
        return self._to_state(
            _Positions(
                [now.codes[i] for i in picked], *(getattr(now, k)[picked].copy() for k in _ARRAYS)
            )
        )

    def _set_model_state(self, ids: torch.Tensor, state: WeightReductionState) -> None:
        self._check_state(state)
        positions = self._from_state(state)
        self._assign(positions, ids.tolist())
        self._needs_reset[ids] = torch.as_tensor(
            positions.ended | (positions.t >= self.max_steps), device=self.device
        )

    def step_from(self, states: WeightReductionState, actions: Any) -> ModelStep:
        """The env's transition on any batch of positions, without touching the envs:
        ``(next_states, rewards, terminated, next_action_masks)`` (see the class docstring)."""
        self._check_state(states)
        acts = torch.as_tensor(actions)
        if acts.is_floating_point() or acts.dtype == torch.bool or acts.ndim > 1:
            raise ValueError(f"actions must be a (K,) integer tensor, got {acts.dtype}")
        acts = acts.long().reshape(-1).cpu()
        if acts.shape[0] != len(states):
            raise ValueError(f"{len(states)} positions need as many actions, got {len(acts)}")
        if bool(((acts < 0) | (acts >= self.num_actions)).any()):
            raise ValueError(f"actions must be in [0, {self.num_actions - 1}], got {acts.tolist()}")
        new, reward, terminated, _, _ = self.transition(
            self._from_state(states), acts.numpy(), who="position"
        )
        masks = np.stack([self._mask_one(c) for c in new.codes])
        return ModelStep(
            self._to_state(new),
            torch.as_tensor(reward, device=self.device).float(),
            torch.as_tensor(terminated, device=self.device),
            torch.as_tensor(masks, device=self.device),
        )

    def observe_states(self, states: WeightReductionState) -> torch.Tensor:
        """The observations of any batch of positions."""
        self._check_state(states)
        return torch.as_tensor(self.features(self._from_state(states)), device=self.device)

    def _check_state(self, state: WeightReductionState) -> None:
        if not isinstance(state, WeightReductionState):
            raise TypeError(
                f"expected a WeightReductionState (from get_state), got {type(state).__name__}"
            )
        padding = (self.max_checks, self.max_qubits)
        for name in ("hx", "hz"):
            value = getattr(state, name)
            if tuple(value.shape[1:]) != padding:
                raise ValueError(
                    f"the state's codes are padded to {tuple(value.shape[1:])}, this env's to "
                    f"{padding} (max_checks, max_qubits): the state is from another env"
                )
        B = len(state)
        for name, dtype in (
            ("hx", torch.bool),
            ("hz", torch.bool),
            ("num_qubits", torch.int64),
            ("num_x_checks", torch.int64),
            ("num_z_checks", torch.int64),
            ("start_index", torch.int64),
            ("start_key", torch.int64),
            ("t", torch.int64),
            ("distance", torch.float64),
            ("distance_exact", torch.bool),
            ("stopped", torch.bool),
            ("ended", torch.bool),
        ):
            value = getattr(state, name)
            if value.dtype != dtype or value.device != self.device or value.shape[0] != B:
                raise ValueError(
                    f"state.{name} is {tuple(value.shape)} {value.dtype} on {value.device}; this "
                    f"env needs {B} positions of {dtype} on {self.device}"
                )
        index = state.start_index.cpu()
        if bool(((index < 0) | (index >= len(self.starts))).any()):
            raise ValueError(f"state.start_index must be in [0, {len(self.starts) - 1}]")
        expected = [self._start_keys[i] for i in index.tolist()]
        if state.start_key.cpu().tolist() != expected:
            raise ValueError(
                "the state starts from a code this env does not start from (another `code`): "
                f"this env's starting codes are {[c.name for c in self.starts]}"
            )

    # -- checkpoints --------------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        state = self._to_state(self._positions()).to_dict()
        del state["start_key"], state["stopped"]  # from start_index; episode_step > t
        return state

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        shape = (self.num_envs, self.max_checks, self.max_qubits)
        if tuple(state["hx"].shape) != shape or tuple(state["hz"].shape) != shape:
            raise ValueError(
                f"checkpointed codes are padded to {tuple(state['hx'].shape)[1:]}, this env to "
                f"{shape[1:]} (max_checks, max_qubits)"
            )
        index = state["start_index"].cpu().numpy().astype(np.int64)
        full = {
            **state,
            "start_key": torch.as_tensor([self._start_keys[j] for j in index], device=self.device),
            "stopped": state["episode_step"] > state["t"],  # each step moves or stops
        }
        names = WeightReductionState.__dataclass_fields__
        loaded = WeightReductionState(**{k: full[k] for k in names})
        self._assign(self._from_state(loaded, suffix="restored"))

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "ended" not in state and "hx" in state:  # written before the search model
            warnings.warn(
                "the WeightReduction state predates the search model (rlsuite 0.1.0 before "
                "'ended'): ended episodes are inferred from needs_reset",
                stacklevel=2,
            )
            t, needs = state["t"], state["needs_reset"]
            stopped = state.get("episode_step", torch.zeros_like(t)) > t
            state = {**state, "ended": needs & ((t < self.max_steps) | stopped)}
        super().load_state_dict(state)
