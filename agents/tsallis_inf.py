"""Tsallis-INF: a best-of-both-worlds bandit over the SOR environment's ω grid.

Sources:

* Zimmert & Seldin, "Tsallis-INF: An Optimal Algorithm for Stochastic and Adversarial
  Bandits", JMLR 22(28), 2021 — the algorithm (their Algorithm 1 with α = 1/2).
* Khodak, Chow, Balcan & Talwalkar, "Learning to Relax", ICLR 2024 — its use for choosing the
  SOR relaxation ω of a sequence of linear systems, against the best fixed ω in hindsight,
  and the context-binned variant (their code: ``learners/TsallisINF.m``, ``TsallisINFCB.m``).

**The algorithm.** Tsallis-INF is follow-the-regularised-leader on the simplex with the
1/2-Tsallis entropy ``Ψ(p) = −4 Σ_i sqrt(p_i)``. At round ``t`` (1-based) it plays

    p_{t,i} = 4 / (η_t (L̂_i − x))²,    η_t = η₀ / sqrt(t),

where ``L̂`` are the cumulative importance-weighted loss estimates and ``x < min_i L̂_i`` is the
unique normaliser with ``Σ_i p_{t,i} = 1``. An arm ``I_t ~ p_t`` is pulled, its loss
``ℓ_t ∈ [0, 1]`` is observed, and

    iw (importance weighting):  L̂_{I_t} += ℓ_t / p_{t,I_t}
    rv (reduced variance):      L̂_i += B_i + 1[i = I_t] (ℓ_t − B_i) / p_{t,i},
                                B_i = 1/2 · 1[p_{t,i} ≥ η_t²]      (Zimmert & Seldin, Sec. 5)

With ``η₀ = 2`` (iw) the pseudo-regret against the best fixed arm is at most ``4 sqrt(KT) + 1``
in any adversarial sequence and ``O(Σ_i log T / Δ_i)`` in stochastic ones (their Theorem 1);
with the rv estimator the paper's rate is ``η₀ = 4``.

**The normaliser.** ``f(x) = Σ_i 4 / (η (L̂_i − x))²`` increases from 0 to ∞ on
``(−∞, min L̂)``, so the root there is unique; to the right of ``min L̂`` ``f`` has further,
*spurious* roots where ``p`` is no longer monotone in ``L̂``. Newton's method on ``f`` from a
point left of the root overshoots (``f`` is convex), and can jump past the pole at ``min L̂``
onto a spurious root. We write ``x = min L̂ − 2z/η`` and ``a_i = η (L̂_i − min L̂) / 2 ≥ 0``,
so ``p_i = (a_i + z)^{−2}``; the root lies in ``[1, sqrt(K)]`` (``Σp ≥ 1`` at ``z = 1``,
``Σp ≤ 1`` at ``z = sqrt(K)``). ``g(z) = (Σ_i (a_i + z)^{−2})^{−1/2}`` is a power mean of the
``a_i + z`` with exponent −2, hence increasing and *concave* in ``z``: Newton's method on
``g(z) = 1`` started at ``z = 1`` increases monotonically to the root and never passes it
(the tangent of a concave function lies above it). A bisection step on the bracket guards
against rounding. See :func:`tsallis_inf_probabilities`.

**In the SOR environments.** The loss of the pulled ω is its cost (iterations) in units of
``u_t``: ``ℓ_t = iterations / u_t``. With ``loss_scale`` set, ``u_t = loss_scale`` (e.g.
``env.max_iterations = 10,000``, so ``ℓ ∈ [0, 1]`` as the theory requires). By default
(``loss_scale=None``) ``u_t`` is the mean cost observed so far, as in the paper's own code
(``learners/TsallisINF.m``: ``k/scale`` with ``scale`` the running mean): the cumulative
estimates are kept in iterations and divided by the current ``u_t`` when ``p`` is computed.
This matters: typical costs are ~100 iterations against the cap of 10,000, so with
``ℓ = iterations / 10,000`` the gaps between arms are ~1e-3 and ``η_t L̂`` stays small for any
practical horizon: over T = 5000 high-variance systems (n = 10) Tsallis-INF then averages ≈ 2.3×
the iterations of the best fixed ω, against ≈ 1.16× with the running mean (two recorded
sequences, two agent seeds each).
:class:`TsallisINF` ignores the observation and competes with the best fixed ω;
:class:`TsallisINFContextBins` runs one independent learner (with its own round counter) per
bin of the scalar context ``obs[:, 0]``.

**Autoreset.** The env uses next-step autoreset: the step after a truncation only resets the
sequence (reward 0). ``learn`` remembers the previous step's flags and makes no update on that
step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from rlsuite.agents.online_bandit import (
    OnlineBandit,
    check_context_range,
    check_positive_float,
)

from rlsuite.vector import BatchedVectorEnv

Estimator = Literal["iw", "rv"]
PAPER_ETA0: dict[str, float] = {"iw": 2.0, "rv": 4.0}
"""Zimmert & Seldin (2021), Theorem 1: η_t = 2/sqrt(t) with iw, 4/sqrt(t) with rv estimators."""


@dataclass
class TsallisINFConfig:
    """Hyperparameters of :class:`TsallisINF`."""

    learning_rate_scale: float = 1.0  # η_t = scale · η₀/sqrt(t); η₀ = 2 (iw) / 4 (rv), the paper's
    estimator: Estimator = "iw"  # loss estimates: "iw" importance-weighted, "rv" reduced-variance
    loss_scale: float | None = None  # ℓ = iterations / loss_scale; None: / running mean (paper)

    def __post_init__(self) -> None:
        check_positive_float("learning_rate_scale", self.learning_rate_scale)
        if self.estimator not in PAPER_ETA0:
            raise ValueError(f"estimator must be 'iw' or 'rv', got {self.estimator!r}")
        if self.loss_scale is not None:
            check_positive_float("loss_scale", self.loss_scale)


@dataclass
class TsallisINFContextBinsConfig(TsallisINFConfig):
    """Hyperparameters of :class:`TsallisINFContextBins` (those of Tsallis-INF, plus bins)."""

    context_range: tuple[float, float] = (-0.15, 0.45)  # c's support; paper's script: (-.15, .65)
    num_bins: int = 10  # equal-width bins over context_range; the paper's script uses 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_context_range(self.context_range)
        if isinstance(self.num_bins, bool) or not isinstance(self.num_bins, int):
            raise TypeError(f"num_bins must be an int, got {self.num_bins!r}")
        if self.num_bins < 1:
            raise ValueError(f"num_bins must be a positive int, got {self.num_bins!r}")


# -- the normaliser -------------------------------------------------------------------------------
def _solve_z(a: np.ndarray, tol: float, max_iter: int) -> float:
    """The root ``z ∈ [1, sqrt(K)]`` of ``Σ_i (a_i + z)^{−2} = 1`` for ``a ≥ 0`` with ``min a = 0``
    (safeguarded Newton on the concave ``g(z) = (Σ_i (a_i + z)^{−2})^{−1/2}``)."""
    low, high = 1.0, math.sqrt(a.size)
    z = low
    for _ in range(max_iter):
        inverse = 1.0 / (a + z)
        inverse2 = inverse * inverse
        s2 = float(inverse2.sum())
        if abs(s2 - 1.0) <= tol:
            return z
        if s2 > 1.0:  # Σp too large: the root is to the right
            low = z
        else:
            high = z
        s3 = float((inverse2 * inverse).sum())
        step = (s2**1.5 - s2) / s3  # (1 − g) / g' with g = s2^{−1/2}, g' = s2^{−3/2} s3
        z_next = z + step
        if not (math.isfinite(z_next) and low <= z_next <= high) or z_next == z:
            z_next = 0.5 * (low + high)
        z = z_next
    return z  # bisection halves a bracket of width sqrt(K) - 1: 100 steps reach float precision


def tsallis_inf_normaliser(
    cum_loss: np.ndarray | torch.Tensor, eta: float, *, tol: float = 1e-12, max_iter: int = 200
) -> float:
    """The normaliser ``x < min_i L̂_i`` with ``Σ_i 4 / (η (L̂_i − x))² = 1`` (see module doc)."""
    losses = _as_loss_vector(cum_loss)
    check_positive_float("eta", eta)
    low = float(losses.min())
    z = _solve_z(0.5 * eta * (losses - low), tol, max_iter)
    return low - 2.0 * z / eta


def tsallis_inf_probabilities(
    cum_loss: np.ndarray | torch.Tensor, eta: float, *, tol: float = 1e-12, max_iter: int = 200
) -> np.ndarray | torch.Tensor:
    """Tsallis-INF's (α = 1/2) distribution ``p_i = 4 (η (L̂_i − x))^{−2}`` over ``K`` arms.

    ``cum_loss``: the ``(K,)`` cumulative loss estimates ``L̂`` (any finite reals); ``eta``: the
    learning rate ``η_t > 0``. The normaliser ``x`` is solved to ``|Σp − 1| ≤ tol`` and ``p`` is
    then divided by its sum. Returns float64, as a tensor on ``cum_loss``'s device if it is a
    tensor and a numpy array otherwise. Lower loss never gets lower probability.
    """
    losses = _as_loss_vector(cum_loss)
    check_positive_float("eta", eta)
    a = 0.5 * eta * (losses - losses.min())
    z = _solve_z(a, tol, max_iter)
    probs = (a + z) ** -2.0
    probs /= probs.sum()
    if isinstance(cum_loss, torch.Tensor):
        return torch.as_tensor(probs, dtype=torch.float64, device=cum_loss.device)
    return probs


def tsallis_inf_update(
    cum_loss: np.ndarray,
    arm: int,
    loss: float,
    probs: np.ndarray,
    eta: float,
    estimator: Estimator = "iw",
    *,
    unit: float = 1.0,
) -> None:
    """Add round ``t``'s loss estimates to ``cum_loss`` (in place): ``arm`` was drawn from
    ``probs`` (played with learning rate ``eta``) and cost ``loss``. ``"iw"``: ``ℓ/p`` on the
    pulled arm; ``"rv"``: ``B_i + 1[i = arm] (ℓ − B_i)/p_i`` with ``B_i = 1/2 · 1[p_i ≥ η²]``.
    ``unit`` is the loss that counts as 1 when ``cum_loss`` and ``loss`` are kept in other
    units (the rv baseline is then ``unit/2``; iw does not depend on it)."""
    if estimator == "iw":
        cum_loss[arm] += loss / probs[arm]
    elif estimator == "rv":
        baseline = np.where(probs >= eta * eta, 0.5 * unit, 0.0)
        cum_loss += baseline
        cum_loss[arm] += (loss - baseline[arm]) / probs[arm]
    else:
        raise ValueError(f"estimator must be 'iw' or 'rv', got {estimator!r}")


def _as_loss_vector(cum_loss: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(cum_loss, torch.Tensor):
        cum_loss = cum_loss.detach().cpu().numpy()
    losses = np.asarray(cum_loss, dtype=np.float64)
    if losses.ndim != 1 or losses.size < 1:
        raise ValueError(
            f"cum_loss must be a 1-D array of at least one arm's loss, got shape {losses.shape}"
        )
    if not np.all(np.isfinite(losses)):
        raise ValueError(f"cum_loss must be finite, got {losses.tolist()}")
    return losses


# -- the agents -----------------------------------------------------------------------------------
class _BinnedTsallisINF(OnlineBandit):
    """``num_bins`` independent Tsallis-INF learners; a subclass maps observations to bins."""

    config: TsallisINFConfig

    def __init__(self, env: BatchedVectorEnv, config: Any = None, *, seed: int = 0) -> None:
        super().__init__(env, config, seed=seed)
        self.eta0 = PAPER_ETA0[self.config.estimator] * self.config.learning_rate_scale
        bins = self._num_bins()
        # Learned state (float64 and int64 on the CPU: a few dozen numbers).
        self.cumulative_loss = np.zeros((bins, self.num_arms))  # L̂ per bin and arm, in iterations
        self.rounds = np.zeros(bins, dtype=np.int64)  # completed rounds per bin (t − 1)
        self.cost_sum = np.zeros(bins)  # iterations observed per bin (for the running-mean unit)

    # -- the algorithm ------------------------------------------------------------------------
    def _num_bins(self) -> int:
        return 1

    def bins(self, obs: torch.Tensor) -> np.ndarray:
        """The learner (bin) index of each observation, shape ``(len(obs),)``."""
        return np.zeros(len(obs), dtype=np.int64)

    def learning_rate(self, bin_index: int) -> float:
        """``η_t = learning_rate_scale · η₀ / sqrt(t)`` for the bin's next round ``t``."""
        return self.eta0 / math.sqrt(float(self.rounds[bin_index]) + 1.0)

    def loss_unit(self, bin_index: int) -> float:
        """``u_t``, the cost counting as loss 1: ``loss_scale``, or the bin's mean cost so far."""
        if self.config.loss_scale is not None:
            return float(self.config.loss_scale)
        if self.rounds[bin_index] == 0 or self.cost_sum[bin_index] <= 0:
            return 1.0  # nothing observed yet (L̂ = 0: p is uniform whatever the unit)
        return float(self.cost_sum[bin_index] / self.rounds[bin_index])

    def probabilities(self, bin_index: int = 0) -> np.ndarray:
        """The distribution over arms the bin's learner plays next, shape ``(K,)``."""
        return tsallis_inf_probabilities(
            self.cumulative_loss[bin_index] / self.loss_unit(bin_index),
            self.learning_rate(bin_index),
        )

    def update(self, bin_index: int, arm: int, cost: float, probs: np.ndarray) -> None:
        """One round of the bin's learner: ``arm`` was drawn from ``probs`` and cost ``cost``
        iterations (the estimates stay in iterations; :meth:`probabilities` divides by ``u_t``)."""
        tsallis_inf_update(
            self.cumulative_loss[bin_index],
            arm,
            cost,
            probs,
            self.learning_rate(bin_index),
            self.config.estimator,
            unit=self.loss_unit(bin_index),
        )
        self.cost_sum[bin_index] += cost
        self.rounds[bin_index] += 1

    # -- the OnlineBandit hooks ----------------------------------------------------------------
    def distribution(self, obs: torch.Tensor) -> tuple[np.ndarray, int]:
        """The distribution ``(K,)`` of the observation's bin, with the bin index."""
        bin_index = int(self.bins(obs)[0])
        return self.probabilities(bin_index), bin_index

    def observe(self, played: int, arm: int, cost: float, probs: np.ndarray) -> dict[str, float]:
        """One round of the learner of bin ``played``; the metric is ``loss``, ``ℓ_t`` in the
        units ``u_t`` that ``probs`` was played in."""
        loss = cost / self.loss_unit(played)
        self.update(played, arm, cost, probs)
        return {"loss": loss}

    def greedy_actions(self, batch: torch.Tensor) -> np.ndarray:
        """The lowest cumulative loss estimate of each observation's bin (the most probable
        arm)."""
        return np.argmin(self.cumulative_loss[self.bins(batch)], axis=1)

    def distributions(self, batch: torch.Tensor) -> Iterator[np.ndarray]:
        """The distribution of each observation's bin."""
        return (self.probabilities(int(b)) for b in self.bins(batch))

    def learned_state(self) -> dict[str, torch.Tensor]:
        return {
            "cumulative_loss": torch.tensor(self.cumulative_loss, dtype=torch.float64),
            "rounds": torch.tensor(self.rounds, dtype=torch.int64),
            "cost_sum": torch.tensor(self.cost_sum, dtype=torch.float64),
        }

    def load_learned_state(self, state: Mapping[str, torch.Tensor]) -> None:
        self.cumulative_loss = state["cumulative_loss"].cpu().numpy().copy()
        self.rounds = state["rounds"].cpu().numpy().copy()
        self.cost_sum = state["cost_sum"].cpu().numpy().copy()

    def state_shape_hint(self) -> str:
        return (
            f"(bins × arms = {self.cumulative_loss.shape}); "
            "was it saved with another num_bins or omega grid?"
        )


class TsallisINF(_BinnedTsallisINF):
    """Tsallis-INF (α = 1/2) over the env's discrete actions; ignores the observation.

    Competes with the best fixed ω in hindsight (Khodak et al. 2024). See the
    module docstring for the algorithm and :class:`TsallisINFConfig` for its hyperparameters.
    """

    name = "tsallis_inf"
    Config = TsallisINFConfig


class TsallisINFContextBins(_BinnedTsallisINF):
    """One Tsallis-INF learner per bin of the scalar context ``obs[:, 0]``.

    ``num_bins`` equal-width bins cover ``context_range``; a context outside it goes to the
    nearest end bin. Each bin has its own round counter (so its own ``η_t``). This competes
    with the best piecewise-constant map from context to ω (Khodak et al. 2024).
    """

    name = "tsallis_inf_cb"
    Config = TsallisINFContextBinsConfig
    config: TsallisINFContextBinsConfig

    def _num_bins(self) -> int:
        return self.config.num_bins

    def bins(self, obs: torch.Tensor) -> np.ndarray:
        low, high = self.config.context_range
        context = obs[:, 0].to(torch.float64).numpy()
        if not np.all(np.isfinite(context)):
            raise ValueError(f"the context obs[:, 0] must be finite, got {context.tolist()}")
        index = np.floor((context - low) / (high - low) * self.config.num_bins)
        return np.clip(index, 0, self.config.num_bins - 1).astype(np.int64)
