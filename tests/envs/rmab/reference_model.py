"""An independent reference of the coRMAB model, for the tests: each family's transition and
reward model and an exact dynamic program, written from the paper's equations in plain numpy.

Source: Xu, Wilder, Khalil & Tambe, "Reinforcement learning with combinatorial actions for
coupled restless bandits" (SEQUOIA), ICLR 2025, and its code (github.com/lily-x/combinatorial-rmab,
``environment/multi_action.py``: the sigmoid link ``a σ(b x − x0) − a σ(−x0)``, scaled by 0.98,
plus 0.01).

* Arm ``j`` is a 4-state birth–death chain: from ``s`` it moves to ``min(s + 1, 3)`` with
  probability ``p_j`` and to ``max(s − 1, 0)`` otherwise; the reward is ``r_j(s')`` of the
  state it moves to, the expected reward ``p_j r_j(up) + (1 − p_j) r_j(down)``.
* Pull families: ``p_j = p_active[j]`` when arm ``j`` is pulled, ``p_passive[j]`` when not.
* Interventions: arm ``j`` receives the dose ``x_j = Σ_i w_ji a_i`` and moves up with
  ``φ_j(x) = 0.98 (α_j σ(β_j x − x0_j) − α_j σ(−x0_j)) + 0.01``.
* Episodes start with each arm in state 1 with probability ``q``, else in state 0.

Only an instance's raw fields are read (``p_passive``, ``p_active``, ``rewards``, the structure
arrays); nothing of the env's model (``families.up_probability`` / ``arm_input`` / ``violations``,
``exact.*``) is imported, so a test that compares the two checks one against the other. The
feasible sets are enumerated by brute force from each family's rules (tiny instances only).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

STATES = 4


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# -- one step ------------------------------------------------------------------------------
def arm_input(inst, action: np.ndarray) -> np.ndarray:
    """What each arm receives under ``action``: its pull (0/1), or for interventions the dose
    ``Σ_i w_ji a_i`` (the action is then the N intervention indicators)."""
    action = np.asarray(action, dtype=np.float64)
    if inst.family == "interventions":
        return np.asarray(inst.structure["weights"], dtype=np.float64) @ action
    return action[: len(inst.rewards)].copy()


def up_probability(inst, received: np.ndarray) -> np.ndarray:
    """``p_j``, each arm's probability of moving up, given what it receives (:func:`arm_input`)."""
    if inst.family == "interventions":
        s = inst.structure
        alpha, beta, x0 = s["alpha"], s["beta"], s["x0"]
        link = alpha * sigmoid(beta * received - x0) - alpha * sigmoid(-x0)
        return 0.98 * link + 0.01
    pulled = np.asarray(received) == 1
    return np.where(pulled, inst.p_active, inst.p_passive)


def successors(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(up, down)``: the states an arm in ``states`` moves to."""
    states = np.asarray(states)
    return np.minimum(states + 1, STATES - 1), np.maximum(states - 1, 0)


def expected_reward(inst, states: np.ndarray, p: np.ndarray) -> float:
    """``Σ_j p_j r_j(up_j) + (1 − p_j) r_j(down_j)`` in the joint state ``states``."""
    up, down = successors(states)
    arms = np.arange(len(states))
    return float(np.sum(p * inst.rewards[arms, up] + (1 - p) * inst.rewards[arms, down]))


# -- the joint chain of a tiny instance ----------------------------------------------------
def joint_states(num_arms: int) -> np.ndarray:
    """Every joint state, (4^J, J), arm 0 the most significant digit (lexicographic order)."""
    return np.array(list(itertools.product(range(STATES), repeat=num_arms)))


def arm_matrix(p: float) -> np.ndarray:
    """One arm's 4 × 4 transition matrix for up-probability ``p``."""
    M = np.zeros((STATES, STATES))
    for s in range(STATES):
        up, down = successors(s)
        M[s, up] += p
        M[s, down] += 1 - p
    return M


def joint_chain(inst, received: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one arm-level input: the expected reward per joint state (4^J,) and the joint
    transition matrix (4^J, 4^J) - the Kronecker product of the independent arms' matrices."""
    p = up_probability(inst, received)
    J = len(p)
    P = np.ones((1, 1))
    reward = np.zeros(1)
    for j in range(J):
        M = arm_matrix(float(p[j]))
        arm_reward = M @ inst.rewards[j]  # expected reward of arm j from each of its states
        reward = (reward[:, None] + arm_reward[None, :]).reshape(-1)
        P = np.kron(P, M)
    return reward, P


def initial_distribution(num_arms: int, q: float) -> np.ndarray:
    """Each arm independently in state 1 with probability ``q``, else 0: (4^J,)."""
    dist = np.ones(1)
    for _ in range(num_arms):
        dist = np.kron(dist, np.array([1 - q, q, 0.0, 0.0]))
    return dist


# -- feasible arm-level inputs by brute force ----------------------------------------------
def feasible_pull_sets(inst) -> list[tuple[int, ...]]:
    """Every set of arms that some feasible action pulls (pull families)."""
    J, B = len(inst.rewards), inst.budget
    s = inst.structure
    subsets = [c for k in range(J + 1) for c in itertools.combinations(range(J), k)]
    if inst.family == "budget":
        return [c for c in subsets if len(c) <= B]
    if inst.family == "capacity":  # each pulled arm on one worker, every worker within capacity

        def fits(arms: tuple[int, ...]) -> bool:
            for workers in itertools.product(range(B), repeat=len(arms)):
                load = np.zeros(B)
                np.add.at(load, list(workers), s["cost"][list(arms)])
                if np.all(load <= s["capacity"]):
                    return True
            return False

        return [c for c in subsets if fits(c)]
    if inst.family == "path":  # pull at most B nodes that a closed 2B-step walk visits
        neighbours = {v: set() for v in range(J)}
        for a, b in np.asarray(s["edges"]).tolist():
            neighbours[a].add(b)
            neighbours[b].add(a)
        source = int(s["source"])
        walks = [[source]]
        for _ in range(2 * B):
            walks = [[*w, v] for w in walks for v in sorted(neighbours[w[-1]])]
        visited = {frozenset(w[1:]) for w in walks if w[-1] == source}
        return [c for c in subsets if len(c) <= B and any(set(c) <= v for v in visited)]
    if inst.family == "scheduling":
        # a pulled arm: two (its slot, worker) services from two distinct workers, each worker
        # available in that slot; a worker serves at most one arm per slot; at most B pulled
        slots, workers = s["arm_slots"], s["worker_slots"]

        def pairs(j: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
            services = [
                (int(slots[j, k]), w) for k in range(2) for w in range(B) if workers[w, slots[j, k]]
            ]
            return [(a, b) for a, b in itertools.combinations(services, 2) if a[1] != b[1]]

        def schedulable(arms: tuple[int, ...]) -> bool:
            for choice in itertools.product(*(pairs(j) for j in arms)):
                used = [service for pair in choice for service in pair]  # (slot, worker)
                if len(set(used)) == len(used):
                    return True
            return False

        return [c for c in subsets if len(c) <= B and schedulable(c)]
    raise ValueError(f"not a pull family: {inst.family!r}")


def feasible_inputs(inst) -> np.ndarray:
    """The distinct arm-level inputs of the feasible actions, (M, J)."""
    J = len(inst.rewards)
    if inst.family == "interventions":
        N = inst.structure["weights"].shape[1]
        doses = []
        for chosen in itertools.combinations(range(N), inst.budget):
            a = np.zeros(N)
            a[list(chosen)] = 1
            doses.append(arm_input(inst, a))
        return np.unique(np.array(doses), axis=0)
    out = np.zeros((0, J))
    for c in feasible_pull_sets(inst):
        x = np.zeros(J)
        x[list(c)] = 1
        out = np.vstack([out, x])
    return out


# -- exact values --------------------------------------------------------------------------
def optimal_values(inst, horizon: int, q: float) -> tuple[float, np.ndarray]:
    """The optimal expected total reward over ``horizon`` steps from the initial distribution,
    and the optimal values per joint state (in :func:`joint_states` order)."""
    chains = [joint_chain(inst, x) for x in feasible_inputs(inst)]
    V = np.zeros(STATES ** len(inst.rewards))
    for _ in range(horizon):
        V = np.max([r + P @ V for r, P in chains], axis=0)
    return float(initial_distribution(len(inst.rewards), q) @ V), V


def policy_value(
    inst, policy: Callable[[np.ndarray], np.ndarray], horizon: int, q: float
) -> tuple[float, np.ndarray]:
    """The expected total reward of a stationary ``policy`` (joint state (J,) → action), and
    its values per joint state. Raises if an action's arm-level input is not feasible."""
    states = joint_states(len(inst.rewards))
    allowed = {tuple(x) for x in np.round(feasible_inputs(inst), 9)}
    r = np.zeros(len(states))
    P = np.zeros((len(states), len(states)))
    chains: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}
    for i, state in enumerate(states):
        received = arm_input(inst, policy(state))
        key = tuple(np.round(received, 9))
        if key not in allowed:
            raise ValueError(f"state {state}: the action's arm input {received} is infeasible")
        if key not in chains:
            chains[key] = joint_chain(inst, received)
        r[i], P[i] = chains[key][0][i], chains[key][1][i]
    V = np.zeros(len(states))
    for _ in range(horizon):
        V = r + P @ V
    return float(initial_distribution(len(inst.rewards), q) @ V), V
