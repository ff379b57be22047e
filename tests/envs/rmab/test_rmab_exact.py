"""The exact DP (:mod:`rlsuite.envs.rmab.exact`) against an independent one, and exact policy
values against Monte Carlo returns from the env.

:mod:`reference_model` (test code, no env code) builds each family's joint chain from the
paper's equations and enumerates the feasible sets by brute force from the family's rules."""

from __future__ import annotations

import numpy as np
import pytest
import reference_model as ref
import scipy.stats
import torch
from rlsuite.envs.rmab import baselines, exact, families
from rlsuite.envs.rmab.instances import FAMILIES, Instance, generate, save_instance
from rlsuite.envs.rmab.vector import CoRMABVectorEnv

from rlsuite.evaluation import run_agent_episodes

pytest.importorskip("highspy")

HORIZON = 6
#: two-sided level of the Monte Carlo comparison: z = 4.89 standard errors
LEVEL = 1e-6
Z = float(scipy.stats.norm.isf(LEVEL / 2))


def tiny(family: str, seed: int) -> Instance:
    """J = 4 arms: 256 joint states."""
    sizes = {
        "budget": dict(num_arms=4, budget=2),
        "interventions": dict(num_arms=4, budget=2, num_interventions=6),
        "path": dict(num_arms=4, budget=2, num_edges=4),
        "scheduling": dict(num_arms=4, budget=2),
        "capacity": dict(num_arms=4, budget=2),
    }[family]
    return generate(family, seed=seed, **sizes)


class Memoised:
    """Deterministic baseline ``name`` on one instance, its action computed once per joint
    state: ``action(states)`` for the reference, ``arm_input(states)`` (the env's own
    ``arm_input``) for exact.policy_value, ``predict(obs)`` as an agent on a vector env."""

    def __init__(self, inst: Instance, name: str) -> None:
        env = CoRMABVectorEnv(1, family=inst.family, num_arms=inst.num_arms, budget=inst.budget)
        self.inst, self.policy = inst, baselines.Baseline(name, env)
        self.S = families.structure_tensors([inst], torch.device("cpu"))
        self.actions: dict[tuple[int, ...], np.ndarray] = {}

    def action(self, states: np.ndarray) -> np.ndarray:
        key = tuple(int(s) for s in states)
        if key not in self.actions:
            self.actions[key] = self.policy.act(self.inst, np.asarray(key))
        return self.actions[key]

    def arm_input(self, states: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(self.action(states)[None])
        return families.arm_input(self.inst.family, x, self.S)[0].numpy()

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        states = torch.round(obs[:, : self.inst.num_arms] * 3).long().numpy()
        return torch.as_tensor(np.stack([self.action(s) for s in states]))


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_exact_dp_matches_the_reference_dp(family: str, seed: int) -> None:
    """The same feasible arm-level inputs, the same optimal values in every joint state and
    from the initial distribution (default q = 0.2, and q = 0.7), and the same policy values
    of two deterministic baselines - to 1e-10 on values of order 10."""
    inst = tiny(family, seed)
    _, inputs = exact.arm_level_actions(inst)
    ours = {tuple(x) for x in np.round(inputs, 9)}
    theirs = {tuple(x) for x in np.round(ref.feasible_inputs(inst), 9)}
    assert ours == theirs
    assert len(theirs) >= 3
    value, V = exact.optimal_value(inst, HORIZON)
    ref_value, ref_V = ref.optimal_values(inst, HORIZON, q=0.2)
    np.testing.assert_allclose(V, ref_V, rtol=0, atol=1e-10)
    assert value == pytest.approx(ref_value, abs=1e-10)
    value = exact.optimal_value(inst, HORIZON, initial_state_prob=0.7)[0]
    assert value == pytest.approx(ref.optimal_values(inst, HORIZON, q=0.7)[0], abs=1e-10)
    for name in ("iterative", "greedy"):
        policy = Memoised(inst, name)
        for q in (0.2, 0.7):
            value = exact.policy_value(inst, policy.arm_input, HORIZON, q)
            reference, _ = ref.policy_value(inst, policy.action, HORIZON, q)
            assert value == pytest.approx(reference, abs=1e-10), (name, q)
            if q == 0.2:
                assert value <= ref_value + 1e-10, (name, value, ref_value)


@pytest.mark.parametrize("family", FAMILIES)
def test_policy_value_matches_monte_carlo_returns_of_the_env(family: str, tmp_path) -> None:
    """exact.policy_value of the iterative-greedy baseline against its mean sampled return over
    1000 episodes of the env (from q = 0.2): within 4.89 standard errors (two-sided 1e-6)."""
    inst, n, q = tiny(family, 3), 1000, 0.2
    policy = Memoised(inst, "iterative")
    value = exact.policy_value(inst, policy.arm_input, HORIZON, q)
    path = tmp_path / "inst.json"
    save_instance(inst, path)
    env = CoRMABVectorEnv(
        n, family=family, instance=path, horizon=HORIZON, initial_state_prob=q, reward="sampled"
    )
    returns = run_agent_episodes(policy, env, range(n)).returns
    se = returns.std(ddof=1) / np.sqrt(n)
    assert abs(returns.mean() - value) <= Z * se, (returns.mean(), value, se)
