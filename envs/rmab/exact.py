"""Exact dynamic programming over joint states for tiny coRMAB instances (J ≤ 5, H ≤ 10).

The joint state of ``J`` arms has ``4^J`` values; under an arm-level action (what each arm
receives) the arms move independently, so a joint state has at most ``2^J`` successors. Only
the arm-level action matters to the dynamics, so the DP maximises over the distinct arm-level
actions of the feasible set (:func:`arm_level_actions`: for the pull families every pull vector
for which the feasible-set MILP has a completion, for interventions every choice of B).

:func:`optimal_value` is the optimal expected total (expected-)reward over ``horizon`` steps
from the env's initial distribution (each arm in state 1 with probability ``q``, else 0);
:func:`policy_value` is the same for a given stationary policy — so a test can check that no
policy beats the optimum.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from rlsuite.envs.rmab import families
from rlsuite.envs.rmab.instances import NUM_STATES, Instance
from rlsuite.envs.rmab.milp import InfeasibleError

MAX_ARMS = 6


def arm_level_actions(inst: Instance, backend: str = "highs") -> tuple[np.ndarray, np.ndarray]:
    """``(actions, inputs)``: one feasible action per distinct arm-level input, and the inputs
    (M, J) (pulls, or doses for interventions)."""
    J = inst.num_arms
    if J > MAX_ARMS:
        raise ValueError(f"exact enumeration is for J ≤ {MAX_ARMS} arms, got {J}")
    actions = []
    if inst.family == "interventions":
        N = inst.structure["weights"].shape[1]
        for chosen in itertools.combinations(range(N), inst.budget):
            x = np.zeros(N)
            x[list(chosen)] = 1
            actions.append(x)
    else:
        milp = families.feasible_milp(inst)
        for pulls in itertools.product((0.0, 1.0), repeat=J):
            lower, upper = milp.lower.copy(), milp.upper.copy()
            lower[:J] = upper[:J] = pulls
            try:
                actions.append(
                    milp.with_bounds(lower, upper).solve(np.zeros(milp.num_vars), backend=backend)
                )
            except InfeasibleError:
                continue
    X = np.stack(actions)
    S = families.structure_tensors([inst], torch.device("cpu"))
    inputs = families.arm_input(
        inst.family, torch.as_tensor(X), {k: v.expand(len(X), *v.shape[1:]) for k, v in S.items()}
    )
    _, first = np.unique(inputs.numpy().round(9), axis=0, return_index=True)
    return X[np.sort(first)], inputs.numpy()[np.sort(first)]


class JointModel:
    """The joint chain of a tiny instance: states ``(4^J, J)``, and for each arm-level input the
    expected reward per state and the successor distribution."""

    def __init__(self, inst: Instance) -> None:
        J = inst.num_arms
        if J > MAX_ARMS:
            raise ValueError(f"exact DP is for J ≤ {MAX_ARMS} arms, got {J}")
        self.inst = inst
        self.states = np.array(list(itertools.product(range(NUM_STATES), repeat=J)))
        self.up = np.minimum(self.states + 1, NUM_STATES - 1)
        self.down = np.maximum(self.states - 1, 0)
        self.moves = np.array(list(itertools.product((0, 1), repeat=J)), dtype=bool)  # (2^J, J)
        self.powers = NUM_STATES ** np.arange(J - 1, -1, -1)
        self.S = families.structure_tensors([inst], torch.device("cpu"))
        # successor index of every (state, move pattern): (4^J, 2^J)
        nxt = np.where(self.moves[None, :, :], self.up[:, None, :], self.down[:, None, :])
        self.successor = nxt @ self.powers

    def index(self, states: np.ndarray) -> np.ndarray:
        return np.asarray(states) @ self.powers

    def step_model(self, arm_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For one arm-level input (J,): expected reward per state (4^J,) and the probability
        of each move pattern per state (4^J, 2^J)."""
        p = families.up_probability(
            self.inst.family, torch.as_tensor(arm_input, dtype=torch.float64)[None], self.S
        )[0].numpy()  # (J,)
        r = self.inst.rewards
        arms = np.arange(self.inst.num_arms)
        expected = (p * r[arms, self.up] + (1 - p) * r[arms, self.down]).sum(1)
        move_prob = np.where(self.moves, p, 1 - p).prod(1)  # (2^J,), the same for every state
        return expected, np.broadcast_to(move_prob, (len(self.states), len(move_prob)))

    def initial_distribution(self, q: float) -> np.ndarray:
        """Each arm in state 1 with probability ``q``, else 0."""
        dist = np.zeros(len(self.states))
        ones = self.states == 1
        valid = (self.states <= 1).all(1)
        dist[valid] = np.where(ones[valid], q, 1 - q).prod(1)
        return dist


def optimal_value(
    inst: Instance, horizon: int, initial_state_prob: float = 0.2, backend: str = "highs"
) -> tuple[float, np.ndarray]:
    """The optimal expected total reward over ``horizon`` steps, and the optimal values
    ``V_0`` per joint state."""
    model = JointModel(inst)
    _, inputs = arm_level_actions(inst, backend)
    models = [model.step_model(a) for a in inputs]
    V = np.zeros(len(model.states))
    for _ in range(horizon):
        V = np.max([r + (P * V[model.successor]).sum(1) for r, P in models], axis=0)
    return float(model.initial_distribution(initial_state_prob) @ V), V


def policy_value(
    inst: Instance,
    policy: Callable[[np.ndarray], np.ndarray],
    horizon: int,
    initial_state_prob: float = 0.2,
) -> float:
    """The expected total reward of the stationary deterministic ``policy`` (joint state (J,)
    → arm-level input (J,)), computed exactly."""
    model = JointModel(inst)
    per_state = [model.step_model(policy(s)) for s in model.states]
    r = np.array([m[0][i] for i, m in enumerate(per_state)])
    P = np.array([m[1][i] for i, m in enumerate(per_state)])
    V = np.zeros(len(model.states))
    for _ in range(horizon):
        V = r + (P * V[model.successor]).sum(1)
    return float(model.initial_distribution(initial_state_prob) @ V)
