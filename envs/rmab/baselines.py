"""The coRMAB baselines: each an agent name for configs and ``rlsuite eval --baseline``.

* ``do-nothing`` — pull nothing (for ``path`` the walk steps back and forth on the source's
  first edge; not defined for ``interventions``, where exactly B must be chosen);
* ``random`` — a random feasible action (the family's sampler);
* ``sampling`` — the best of K = 100 random feasible actions by one-step expected reward;
* ``greedy`` / ``greedy:scip`` — the one-step greedy MILP: maximise the expected next reward
  over the exact feasible set (the env's own :func:`~rlsuite.envs.rmab.families.feasible_milp`),
  with HiGHS or SCIP. For pull families the objective is linear in the pulls,
  ``Σ_j a_j (p_active,j − p_passive,j)(r_j(up) − r_j(down))``; for interventions each arm's
  reward is a function of how many of its interventions are chosen, modelled exactly by one
  binary per count (a piecewise-linear function with integer breakpoints). For the path family
  this is an orienteering problem (NP-hard) on the time-expanded walk; on large graphs a
  per-action ``time_limit`` plays the best walk found;
* ``iterative`` — iterative greedy: add arms by marginal one-step gain while the action stays
  feasible (for path a greedy walk, for interventions one intervention at a time);
* ``whittle`` — the Whittle-index policy (``budget`` family only: the decoupled case), indices
  by value iteration and bisection over the subsidy (:mod:`~rlsuite.envs.rmab.whittle`, γ = 0.95):
  pull the B arms with the largest positive indices.

Policies read the arm states from the observation (``s_j = 3 · obs_j``) and act on every
environment of a :class:`~rlsuite.envs.rmab.vector.CoRMABVectorEnv`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from rlsuite.envs.rmab import families
from rlsuite.envs.rmab.instances import WEIGHT, Instance
from rlsuite.envs.rmab.vector import CoRMABVectorEnv
from rlsuite.envs.rmab.whittle import arm_indices

from rlsuite.evaluation import EpisodeResults, run_agent_episodes

NAMES = ("do-nothing", "random", "sampling", "greedy", "greedy:scip", "iterative", "whittle")
NUM_SAMPLES = 100


def arm_gains(inst: Instance, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per arm: the reward going up and going down from ``states`` (J,)."""
    arms = np.arange(inst.num_arms)
    up, down = np.minimum(states + 1, 3), np.maximum(states - 1, 0)
    return inst.rewards[arms, up], inst.rewards[arms, down]


def expected_rewards(inst: Instance, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """One-step expected reward of each action (M, dim) in joint state ``states`` (J,)."""
    S = families.structure_tensors([inst], torch.device("cpu"))
    S = {k: v.expand(len(actions), *v.shape[1:]) for k, v in S.items()}
    x = torch.as_tensor(actions, dtype=torch.float64)
    p = families.up_probability(inst.family, families.arm_input(inst.family, x, S), S).numpy()
    r_up, r_down = arm_gains(inst, states)
    return (p * r_up + (1 - p) * r_down).sum(1)


def pull_gains(inst: Instance, states: np.ndarray) -> np.ndarray:
    """The expected-reward gain of pulling each arm: ``(p_active − p_passive)(r_up − r_down)``."""
    r_up, r_down = arm_gains(inst, states)
    return (inst.p_active - inst.p_passive) * (r_up - r_down)


# -- greedy MILP -----------------------------------------------------------------------------
class GreedyMILP:
    """The one-step greedy MILP for one instance (objective rebuilt per state).

    ``time_limit`` (seconds per action, default none) bounds each solve; when it runs out the
    best feasible action found is played and counted in ``timeouts``. Every solve starts from
    the iterative-greedy action as its incumbent, so the greedy MILP is never worse than it."""

    def __init__(
        self, inst: Instance, backend: str = "highs", time_limit: float | None = None
    ) -> None:
        self.inst, self.backend, self.time_limit = inst, backend, time_limit
        self.solve_times: list[float] = []
        self.timeouts = 0
        J = inst.num_arms
        if inst.family == "interventions":
            # one binary δ[j, m] per arm and count m of its chosen interventions
            reach = inst.structure["weights"] > 0  # (J, N)
            N = reach.shape[1]
            self.counts = [(j, m) for j in range(J) for m in range(int(reach[j].sum()) + 1)]
            arm, count = (np.array(v) for v in zip(*self.counts, strict=True))
            params = (torch.as_tensor(inst.structure[k][arm]) for k in ("alpha", "beta", "x0"))
            dose = torch.as_tensor(WEIGHT * count, dtype=torch.float64)
            self.count_arm = arm
            self.count_up = families.shifted_sigmoid(dose, *params).numpy()  # φ_j(3m)
            base = families.feasible_milp(inst)
            k = len(self.counts)
            rows = []
            lower, upper = [], []
            for j in range(J):
                cols = [N + i for i, (jj, _) in enumerate(self.counts) if jj == j]
                one = np.zeros(N + k)
                one[cols] = 1
                link = np.zeros(N + k)
                link[cols] = [m for jj, m in self.counts if jj == j]
                link[:N] = -reach[j].astype(np.float64)
                rows += [one, link]
                lower += [1, 0]
                upper += [1, 0]
            self.milp = base.extend(
                lower=[0] * k,
                upper=[1] * k,
                integrality=[True] * k,
                names=[f"count[{j},{m}]" for j, m in self.counts],
                rows=sp.csr_matrix(np.array(rows)),
                row_lower=lower,
                row_upper=upper,
            )
        else:
            self.milp = families.feasible_milp(inst)

    def _completion(self, action: np.ndarray) -> np.ndarray:
        """``action`` as a point of the greedy program (for interventions: with its counts)."""
        if self.inst.family != "interventions":
            return action
        chosen = (self.inst.structure["weights"] > 0) @ action  # (J,) interventions per arm
        counts = [float(chosen[j] == m) for j, m in self.counts]
        return np.concatenate([action, counts])

    def act(self, states: np.ndarray) -> np.ndarray:
        inst, J = self.inst, self.inst.num_arms
        c = np.zeros(self.milp.num_vars)
        if inst.family == "interventions":
            r_up, r_down = arm_gains(inst, states)
            p, arm = self.count_up, self.count_arm
            c[families.action_dim(inst) :] = p * r_up[arm] + (1 - p) * r_down[arm]
        else:
            c[:J] = pull_gains(inst, states)
        begin = time.perf_counter()
        start = self._completion(iterative_greedy(inst, states))
        x, optimal = self.milp.optimize(
            c, backend=self.backend, time_limit=self.time_limit, start=start
        )
        self.solve_times.append(time.perf_counter() - begin)
        self.timeouts += not optimal
        return x[: families.action_dim(inst)]


# -- iterative greedy ------------------------------------------------------------------------
def iterative_greedy(inst: Instance, states: np.ndarray) -> np.ndarray:
    """Add arms (or interventions) by marginal one-step gain while the action stays feasible."""
    J, B = inst.num_arms, inst.budget
    s = inst.structure
    x = np.zeros(families.action_dim(inst))
    gains = pull_gains(inst, states) if inst.family != "interventions" else None
    order = np.argsort(-gains, kind="stable") if gains is not None else None
    if inst.family == "interventions":
        for _ in range(B):
            candidates = np.flatnonzero(x == 0)
            trial = np.repeat(x[None], len(candidates), 0)
            trial[np.arange(len(candidates)), candidates] = 1
            x = trial[int(np.argmax(expected_rewards(inst, states, trial)))]
    elif inst.family == "budget":
        x[[j for j in order[:B] if gains[j] > 0]] = 1
    elif inst.family == "capacity":
        remaining = s["capacity"].astype(np.int64).copy()
        for j in order:
            fits = np.flatnonzero(remaining >= s["cost"][j])
            if gains[j] <= 0 or len(fits) == 0:
                continue
            i = int(fits[np.argmin(remaining[fits])])  # best fit
            remaining[i] -= s["cost"][j]
            x[j] = x[J + j * B + i] = 1
    elif inst.family == "scheduling":
        busy = np.zeros_like(s["worker_slots"])
        for j in order:
            if gains[j] <= 0 or x[:J].sum() >= B:
                continue
            free = families.free_services(inst, j, busy)
            pair = next(((p, q) for p in free for q in free if p[1] < q[1]), None)
            if pair is not None:
                families.serve(inst, x, busy, j, pair)
    else:  # path: walk greedily towards unvisited gain, always able to return in time
        steps = families.walk_steps(inst)
        nodes, seen = [int(s["source"])], {int(s["source"])}
        for t in range(1, 2 * B + 1):
            options = steps[t][nodes[-1]]
            value = [max(gains[v], 0.0) if v not in seen else 0.0 for v in options]
            nodes.append(options[int(np.argmax(value))])
            seen.add(nodes[-1])
        pulls = [v for v in sorted(seen, key=lambda v: -gains[v]) if gains[v] > 0][:B]
        x = families.walk_action(inst, nodes, pulls)
    return x


def do_nothing(inst: Instance) -> np.ndarray:
    if inst.family == "interventions":
        raise ValueError(
            "do-nothing is not an action of the 'interventions' family (exactly B interventions must be chosen)"
        )
    x = np.zeros(families.action_dim(inst))
    if inst.family == "path":
        src = int(inst.structure["source"])
        edge = inst.structure["edges"][np.flatnonzero((inst.structure["edges"] == src).any(1))[0]]
        other = int(edge[0] if edge[1] == src else edge[1])
        x = families.walk_action(inst, [src, other] * inst.budget + [src], [])
    return x


# -- policies over a vector env ------------------------------------------------------------
class Baseline:
    """Baseline ``name`` as an agent (``predict(obs)``) on every environment of ``env``
    (``time_limit``: seconds per greedy-MILP action, see :class:`GreedyMILP`)."""

    def __init__(
        self, name: str, env: CoRMABVectorEnv, seed: int = 0, time_limit: float | None = None
    ) -> None:
        if name not in NAMES:
            raise ValueError(f"unknown coRMAB baseline {name!r}; known: {', '.join(NAMES)}")
        if name == "whittle" and env.family != "budget":
            raise ValueError(
                f"the Whittle-index policy needs decoupled arms (family 'budget'), not {env.family!r}"
            )
        self.name, self.env, self.time_limit = name, env, time_limit
        self.rng = np.random.default_rng(seed)
        self._greedy: dict[int, GreedyMILP] = {}
        self._whittle: dict[int, np.ndarray] = {}

    @property
    def solve_times(self) -> list[float]:
        """Seconds per greedy-MILP action so far."""
        return [t for g in self._greedy.values() for t in g.solve_times]

    @property
    def timeouts(self) -> int:
        """Greedy-MILP actions whose solve hit the time limit (the best found was played)."""
        return sum(g.timeouts for g in self._greedy.values())

    def act(self, inst: Instance, states: np.ndarray) -> np.ndarray:
        name = self.name
        if name == "do-nothing":
            return do_nothing(inst)
        if name == "random":
            return families.sample(inst, self.rng)
        if name == "sampling":
            candidates = np.stack([families.sample(inst, self.rng) for _ in range(NUM_SAMPLES)])
            return candidates[int(np.argmax(expected_rewards(inst, states, candidates)))]
        if name.startswith("greedy"):
            if id(inst) not in self._greedy:
                backend = "scip" if name == "greedy:scip" else "highs"
                self._greedy[id(inst)] = GreedyMILP(inst, backend, self.time_limit)
            return self._greedy[id(inst)].act(states)
        if name == "iterative":
            return iterative_greedy(inst, states)
        if id(inst) not in self._whittle:
            self._whittle[id(inst)] = np.stack(
                [
                    arm_indices(inst.p_passive[j], inst.p_active[j], inst.rewards[j])
                    for j in range(inst.num_arms)
                ]
            )
        index = self._whittle[id(inst)][np.arange(inst.num_arms), states]
        x = np.zeros(inst.num_arms)
        x[[j for j in np.argsort(-index, kind="stable")[: inst.budget] if index[j] > 0]] = 1
        return x

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        states = torch.round(obs[:, : self.env.num_arms] * 3).long().cpu().numpy()
        actions = [self.act(self.env.instance(i), states[i]) for i in range(self.env.num_envs)]
        return torch.as_tensor(np.stack(actions), device=obs.device)


def episode_results(
    name: str, make_env: Callable[[int], CoRMABVectorEnv], seeds: Sequence[int]
) -> EpisodeResults:
    """Baseline ``name`` on ``seeds``, one episode each, all in one batch."""
    env = make_env(len(seeds))
    return run_agent_episodes(Baseline(name, env, seed=int(seeds[0])), env, seeds)


def episode_returns(
    name: str, make_env: Callable[[int], CoRMABVectorEnv], seeds: Sequence[int]
) -> np.ndarray:
    return episode_results(name, make_env, seeds).returns
