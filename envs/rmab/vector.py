"""The coRMAB environments' batched core: many restless-bandit instances stepped in lockstep.

:class:`CoRMABVectorEnv` is the native ``gymnasium.vector.VectorEnv`` (torch tensors on
``device``); the single ``gymnasium.Env`` in :mod:`rlsuite.envs.rmab.env` is a batch of one
over it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from rlsuite.envs.rmab import families
from rlsuite.envs.rmab.instances import (
    FAMILIES,
    Instance,
    generate,
    load_instance,
    read_edge_list,
    with_graph,
)
from rlsuite.envs.rmab.milp import BACKENDS, MILP

from rlsuite import keyed_random
from rlsuite.vector import BatchedVectorEnv, Info

REWARDS = ("expected", "sampled")
INFEASIBLE = ("raise", "project")
_INIT_STREAM, _STEP_STREAM = 1, 2


class FeasibleActionSpace(spaces.MultiBinary):
    """``MultiBinary`` whose ``sample()`` draws *feasible* actions (with the family's sampler),
    so ``env.action_space.sample()`` is a valid random policy. ``contains`` is MultiBinary's
    (shape and 0/1 values); feasibility is the env's ``is_feasible``."""

    def __init__(
        self,
        shape: int | Sequence[int],
        sampler: Callable[[np.random.Generator], np.ndarray],
        seed: int | None = None,
    ) -> None:
        super().__init__(shape, seed)
        self._sampler = sampler

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            raise ValueError(
                "a coRMAB action space samples feasible actions; masks are not supported"
            )
        return self._sampler(self.np_random).astype(self.dtype).reshape(self.shape)


class CoRMABVectorEnv(BatchedVectorEnv):
    """Coupled restless bandits with combinatorial action constraints (coRMAB).

    Source: Xu, Wilder, Khalil & Tambe, "Reinforcement learning with combinatorial actions for
    coupled restless bandits", ICLR 2025 (arXiv 2503.01919).

    **Description.** ``J`` arms (``num_arms``) each follow a 4-state birth–death chain whose
    up-probability depends on what the planner does to it; every step the planner picks one
    combinatorial action from a feasible set that does not decouple across arms (``family``:
    ``"budget"``, ``"interventions"``, ``"path"``, ``"scheduling"``, ``"capacity"``; the arms,
    rewards and constraints are documented in :mod:`rlsuite.envs.rmab.instances`). An episode
    lasts ``horizon`` steps (20). Initial states: arm ``j`` starts in state 1 with probability
    ``initial_state_prob`` and in state 0 otherwise (0.5 for training; the paper evaluates with
    0.2, which ``configs/rmab`` set for evaluation).

    **Instances.** ``instance_seed=k`` (default 0) fixes one instance, drawn from seed ``k``, for
    every environment and episode — the paper's setting: a planner is trained and evaluated on
    one instance, and episode seeds vary the initial states and transitions. ``instance_seed=None``
    draws environment ``i``'s instance from its reset seed instead (a batch of independent
    instances). ``instance=PATH`` loads one from a JSON file
    (:func:`~rlsuite.envs.rmab.instances.save_instance`); for ``"path"``, ``graph=PATH`` (an edge
    list, ``u v`` per line) or an ``(E, 2)`` array replaces the random graph (``source`` node 0).
    Family sizes: ``num_interventions`` (``2B``), ``num_edges``, ``num_slots`` (5).

    **Action space.** ``MultiBinary(dim)``: the family's decision variables, laid out as in
    :mod:`rlsuite.envs.rmab.families` (``action_names(i)`` names each entry);
    ``arm_pulls(action)`` maps an action to what each arm receives (its pull, or for
    interventions its dose ``Σ_i w_ji a_i``). ``feasible_set(i)`` is the set as a solver-neutral
    :class:`~rlsuite.envs.rmab.milp.MILP` (with adapters to HiGHS and SCIP), ``is_feasible``
    checks an action rule by rule without a solver, ``sample_feasible(rng)`` draws one, and so
    does ``action_space.sample()``. An infeasible action raises a ``ValueError`` naming the
    broken rules (``infeasible="raise"``, the default); ``infeasible="project"`` instead replaces
    it by the nearest feasible action in L1 distance (a MILP, ``projection_backend``), for agents
    such as PPO that cannot respect the constraints, and sets ``info["projected"]``. Entries must
    be 0 or 1 (in [0, 1] when projecting); a wrong shape is a ``ValueError``.

    **Observation space.** ``Box(0, 1, (J + 1,), float32)``: ``s_j / 3`` for each arm, then the
    fraction of the horizon left, ``(H − t) / H``.

    **Reward.** ``reward="expected"`` (default; the paper trains and evaluates on it): the
    expected next-step reward ``Σ_j [p_j r_j(min(s_j+1, 3)) + (1 − p_j) r_j(max(s_j−1, 0))]``;
    ``"sampled"``: the realised ``Σ_j r_j(s'_j)``. ``info`` has both (``expected_reward``,
    ``sampled_reward``). Per arm the reward is at most ``R_top`` (≤ 6), so a step's reward
    lies in ``[0, Σ_j R_top,j]``.

    **Episode end.** Truncated after ``horizon`` steps (20); never terminated.

    **Arguments** (keyword-only; the vector env also takes ``num_envs`` and ``device``):

    | argument                 | default      | meaning                                            |
    |--------------------------|--------------|----------------------------------------------------|
    | ``family``               | ``"budget"`` | the constraint family (fixed by each id)           |
    | ``num_arms``             | 20           | ``J``                                              |
    | ``budget``               | 5            | ``B``: budget and path, at most ``B`` pulls; interventions, exactly ``B`` of ``N``; scheduling and capacity, ``B`` workers (scheduling also pulls at most ``B``) |
    | ``horizon``              | 20           | steps per episode, ``H``                           |
    | ``reward``               | ``"expected"`` | ``"expected"`` or ``"sampled"``                  |
    | ``initial_state_prob``   | 0.5          | probability that an arm starts in state 1 (else 0) |
    | ``instance_seed``        | 0            | the one instance's seed; ``None``: one per env from its reset seed |
    | ``instance``             | ``None``     | a JSON instance file (replaces ``instance_seed``)  |
    | ``graph``                | ``None``     | path family: an edge-list file or ``(E, 2)`` array |
    | ``num_interventions``    | ``2B``       | interventions family: ``N``                        |
    | ``num_edges``            | by ``J``     | path family: edges of the random graph             |
    | ``num_slots``            | 5            | scheduling family: timeslots ``K``                 |
    | ``infeasible``           | ``"raise"``  | ``"raise"`` or ``"project"`` (nearest feasible action) |
    | ``projection_backend``   | ``"highs"``  | MILP solver of the projection (``"highs"``, ``"scip"``) |
    """

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device | None = None,
        *,
        family: str = "budget",
        num_arms: int = 20,
        budget: int = 5,
        horizon: int = 20,
        reward: Literal["expected", "sampled"] = "expected",
        initial_state_prob: float = 0.5,
        instance_seed: int | None = 0,
        instance: str | Path | None = None,
        graph: str | Path | np.ndarray | None = None,
        num_interventions: int | None = None,
        num_edges: int | None = None,
        num_slots: int | None = None,
        infeasible: Literal["raise", "project"] = "raise",
        projection_backend: str = "highs",
    ) -> None:
        super().__init__(num_envs, device)
        for name, value, allowed in (
            ("family", family, FAMILIES),
            ("reward", reward, REWARDS),
            ("infeasible", infeasible, INFEASIBLE),
            ("projection_backend", projection_backend, BACKENDS),
        ):
            if value not in allowed:
                raise ValueError(
                    f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}"
                )
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        if not 0.0 <= initial_state_prob <= 1.0:
            raise ValueError(f"initial_state_prob must be in [0, 1], got {initial_state_prob}")
        self.family, self.horizon, self.reward_name = family, horizon, reward
        self.initial_state_prob = float(initial_state_prob)
        self.infeasible, self.projection_backend = infeasible, projection_backend
        for option, value, owner in (
            ("graph", graph, "path"),
            ("num_edges", num_edges, "path"),
            ("num_interventions", num_interventions, "interventions"),
            ("num_slots", num_slots, "scheduling"),
        ):
            if value is not None and family != owner:
                raise ValueError(f"{option}= applies to family={owner!r} only, not {family!r}")
        self._graph = read_edge_list(graph) if isinstance(graph, (str, Path)) else graph
        self._sizes = {
            "num_interventions": num_interventions,
            "num_edges": num_edges,
            "num_slots": num_slots,
        }
        self._num_arms, self._budget = num_arms, budget
        self._instance_seed = instance_seed
        self._cache: dict[int, Instance] = {}
        self._milps: dict[int, MILP] = {}
        if instance is not None:
            shared: Instance | None = load_instance(instance)
            if shared.family != family:
                raise ValueError(
                    f"{instance} holds a {shared.family!r} instance, but family={family!r}"
                )
        elif instance_seed is not None:
            shared = self._make_instance(int(instance_seed))
        else:
            shared = None
        template = shared if shared is not None else self._make_instance(0)
        self._shared = shared
        self.instances: list[Instance] = [template] * num_envs
        self._refresh_structure()
        J, dim = template.num_arms, families.action_dim(template)
        self.num_arms, self.budget, self.action_dim = J, template.budget, dim
        self.single_observation_space = spaces.Box(0.0, 1.0, (J + 1,), np.float32)
        self.single_action_space = FeasibleActionSpace(
            dim, lambda rng: self.sample_feasible(rng, 0)
        )
        self._finish_spaces()
        self.action_space = FeasibleActionSpace(
            (num_envs, dim),
            lambda rng: np.stack([self.sample_feasible(rng, i) for i in range(self.num_envs)]),
        )
        self.states = torch.zeros(num_envs, J, dtype=torch.int64, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    # -- instances --------------------------------------------------------------------------
    def _make_instance(self, seed: int) -> Instance:
        if seed not in self._cache:
            inst = generate(self.family, self._num_arms, self._budget, seed, **self._sizes)
            if self._graph is not None:
                inst = with_graph(inst, self._graph)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[seed] = inst
        return self._cache[seed]

    def _idle_actions(self) -> torch.Tensor:
        """A fixed feasible action per env (played, and ignored, by envs being reset)."""
        distinct = {id(inst): inst for inst in self.instances}
        fixed = {k: families.sample(inst, np.random.default_rng(0)) for k, inst in distinct.items()}
        rows = [fixed[id(inst)] for inst in self.instances]
        return torch.as_tensor(np.stack(rows), dtype=torch.float64, device=self.device)

    def _refresh_structure(self) -> None:
        self.structure = families.structure_tensors(self.instances, self.device)

    def instance(self, index: int = 0) -> Instance:
        """The instance environment ``index`` is playing."""
        return self.instances[index]

    # -- the extra structure for agents ----------------------------------------------------------
    def action_names(self, index: int = 0) -> list[str]:
        return families.action_names(self.instances[index])

    def feasible_set(self, index: int = 0) -> MILP:
        """The feasible actions of environment ``index`` as a MILP over the action's entries
        (``MILP.solve(objective, backend="highs" | "scip")``, ``to_highs``, ``to_scip``)."""
        inst = self.instances[index]
        if id(inst) not in self._milps:
            self._milps = {
                id(i): self._milps[id(i)] for i in set(self.instances) if id(i) in self._milps
            }
            self._milps[id(inst)] = families.feasible_milp(inst)
        return self._milps[id(inst)]

    def is_feasible(self, action: Any, index: int = 0) -> bool:
        """Whether ``action`` satisfies every rule of environment ``index``'s family (no solver)."""
        return not self.broken_rules(action, index)

    def broken_rules(self, action: Any, index: int = 0) -> list[str]:
        """The rules (:data:`~rlsuite.envs.rmab.families.RULES`) that ``action`` breaks."""
        x = self._check_shape(
            torch.as_tensor(np.asarray(action), dtype=torch.float64, device=self.device), 1
        )
        S = {k: v[index : index + 1] for k, v in self.structure.items()}
        return [
            k for k, v in families.violations(self.family, self.budget, x, S).items() if bool(v[0])
        ]

    def sample_feasible(self, rng: np.random.Generator, index: int = 0) -> np.ndarray:
        """A random feasible action (0/1 float array) for environment ``index``."""
        return families.sample(self.instances[index], rng)

    def arm_pulls(self, action: Any) -> Any:
        """What each arm receives under ``action`` — ``(dim,)`` or ``(num_envs, dim)``, numpy or
        torch (returned alike): 1/0 for pulled/passive, or the dose for interventions."""
        is_numpy = not isinstance(action, torch.Tensor)
        x = torch.as_tensor(
            np.asarray(action) if is_numpy else action, dtype=torch.float64, device=self.device
        )
        single = x.ndim == 1
        x = self._check_shape(x.reshape(1, -1) if single else x, 1 if single else self.num_envs)
        S = self.structure if not single else {k: v[:1] for k, v in self.structure.items()}
        out = families.arm_input(self.family, x, S)
        out = out[0] if single else out
        return out.cpu().numpy() if is_numpy else out

    # -- dynamics ----------------------------------------------------------------------------
    def _reset_envs(self, ids: torch.Tensor) -> None:
        if self._shared is None and len(ids):
            seeds = self.env_seeds[ids].tolist()
            for i, seed in zip(ids.tolist(), seeds, strict=True):
                self.instances[i] = self._make_instance(int(seed))
            self._refresh_structure()
        key = keyed_random.combine(self.env_seeds[ids], self.episode_index[ids], _INIT_STREAM)
        u = keyed_random.uniform(key, self.num_arms)
        self.states[ids] = (u < self.initial_state_prob).long()
        self.t[ids] = 0

    def _observe(self) -> torch.Tensor:
        left = (self.horizon - self.t).to(torch.float32) / self.horizon
        return torch.cat([self.states.to(torch.float32) / 3.0, left.unsqueeze(1)], dim=1)

    def _check_shape(self, x: torch.Tensor, n: int) -> torch.Tensor:
        if x.shape == (self.action_dim,) and n == 1:
            x = x.reshape(1, -1)
        if x.shape != (n, self.action_dim):
            expected = f"({self.action_dim},)" if n == 1 else f"({n}, {self.action_dim})"
            raise ValueError(
                f"a {self.family!r} action must have shape {expected} (the family's decision variables, "
                f"see action_names()), got {tuple(x.shape)}"
            )
        return x

    def _as_action_tensor(self, actions: Any) -> torch.Tensor:
        if isinstance(actions, torch.Tensor):
            x = actions.to(device=self.device, dtype=torch.float64)
        else:
            x = torch.as_tensor(np.asarray(actions, dtype=np.float64), device=self.device)
        return self._check_shape(x, self.num_envs)

    def _step_envs(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        x, projected = self._feasible_actions(actions)
        S = self.structure
        p_up = families.up_probability(self.family, families.arm_input(self.family, x, S), S)
        up = (self.states + 1).clamp(max=3)
        down = (self.states - 1).clamp(min=0)
        r_up = torch.gather(S["rewards"], 2, up.unsqueeze(2)).squeeze(2)
        r_down = torch.gather(S["rewards"], 2, down.unsqueeze(2)).squeeze(2)
        expected = (p_up * r_up + (1.0 - p_up) * r_down).sum(1)
        key = keyed_random.combine(self.env_seeds, self.episode_index, self.t, _STEP_STREAM)
        moves_up = keyed_random.uniform(key, self.num_arms) < p_up
        self.states = torch.where(moves_up, up, down)
        sampled = torch.where(moves_up, r_up, r_down).sum(1)
        self.t = self.t + 1
        reward = expected if self.reward_name == "expected" else sampled
        truncated = self.t >= self.horizon
        info = {"expected_reward": expected, "sampled_reward": sampled, "projected": projected}
        return reward, torch.zeros_like(truncated), truncated, info

    def _feasible_actions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actions to play and which of them were projected (raising on infeasible ones
        unless ``infeasible="project"``)."""
        in_range = (x >= 0) & (x <= 1) if self.infeasible == "project" else (x == 0) | (x == 1)
        if not bool(in_range.all()):
            env = int(torch.nonzero(~in_range.all(1))[0])
            allowed = "in [0, 1]" if self.infeasible == "project" else "0 or 1"
            raise ValueError(
                f"action entries must be {allowed}; env {env} got values {sorted(set(x[env][~in_range[env]].tolist()))[:5]}"
            )
        broken = families.violations(self.family, self.budget, x, self.structure)
        bad = torch.stack(list(broken.values())).any(0)
        if not bool(bad.any()):
            return x, bad
        if self.infeasible == "raise":
            env = int(torch.nonzero(bad)[0])
            rules = [f"{k} ({families.RULES[k]})" for k, v in broken.items() if bool(v[env])]
            raise ValueError(
                f"infeasible {self.family!r} action for env {env}: it breaks {'; '.join(rules)}. "
                "Use env.unwrapped.is_feasible / sample_feasible / feasible_set, or "
                "infeasible='project' to replace infeasible actions by the nearest feasible one"
            )
        x = x.clone()
        for env in torch.nonzero(bad).flatten().tolist():
            target = x[env].cpu().numpy()
            x[env] = torch.as_tensor(
                self.feasible_set(env).solve(
                    1.0 - 2.0 * target, maximize=False, backend=self.projection_backend
                ),
                device=self.device,
            )
        return x, bad

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"states": self.states, "t": self.t}

    def _load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        self.states, self.t = state["states"], state["t"]
        if self._shared is None:
            self.instances = [self._make_instance(int(s)) for s in self.env_seeds.tolist()]
            self._refresh_structure()
