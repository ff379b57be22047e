"""Each coRMAB family's action vector, its feasibility rules, its MILP and a feasible sampler.

An action is a binary vector: the family's decision variables, documented here and in
:class:`~rlsuite.envs.rmab.vector.CoRMABVectorEnv`. With ``J`` arms and budget ``B``:

=================  ===========================================================================
family             action vector (in this order)
=================  ===========================================================================
``budget``         ``a`` (J): arm pulls
``interventions``  ``a`` (N): the chosen interventions (exactly B)
``path``           ``a`` (J), then ``y`` (T × 2E), ``T = 2B``: ``y[t, d] = 1`` when step ``t``
                   of the walk traverses directed edge ``d`` (``d < E``: edge ``d`` as given,
                   ``u → v``; ``d ≥ E``: edge ``d − E`` reversed)
``scheduling``     ``a`` (J), then ``z`` (J × 2 × B): ``z[j, s, w] = 1`` when worker ``w``
                   serves arm ``j`` in the arm's ``s``-th slot ``arm_slots[j, s]``
``capacity``       ``a`` (J), then ``u`` (J × B): ``u[j, i] = 1`` when arm ``j`` is assigned
                   to worker ``i``
=================  ===========================================================================

Three views of the same feasible set, kept independent so each checks the others:

* :func:`violations` — the rules, written directly as batched torch tests (one bool per
  action and rule), used by ``step()`` and ``is_feasible``;
* :func:`feasible_milp` — the set as a :class:`~rlsuite.envs.rmab.milp.MILP` (for solvers; the
  path family's walk is a time-expanded flow, not the rule-by-rule test);
* :func:`sample` — a random feasible action, built constructively.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from rlsuite.envs.rmab.instances import Instance
from rlsuite.envs.rmab.milp import MILP

Structure = dict[str, torch.Tensor]


def num_pull_vars(inst: Instance) -> int:
    """Variables at the front of the action that are arm pulls (0 for interventions)."""
    return 0 if inst.family == "interventions" else inst.num_arms


def action_names(inst: Instance) -> list[str]:
    """One name per action entry, e.g. ``pull[3]``, ``walk[2,7]``, ``assign[4,1]``."""
    J, B = inst.num_arms, inst.budget
    s = inst.structure
    if inst.family == "interventions":
        return [f"intervene[{i}]" for i in range(s["weights"].shape[1])]
    pulls = [f"pull[{j}]" for j in range(J)]
    if inst.family == "budget":
        return pulls
    if inst.family == "path":
        E = len(s["edges"])
        return pulls + [f"walk[{t},{d}]" for t in range(2 * B) for d in range(2 * E)]
    if inst.family == "scheduling":
        return pulls + [f"serve[{j},{k},{w}]" for j in range(J) for k in range(2) for w in range(B)]
    return pulls + [f"assign[{j},{i}]" for j in range(J) for i in range(B)]


def action_dim(inst: Instance) -> int:
    """The length of the action vector (the number of :func:`action_names`)."""
    J, B = inst.num_arms, inst.budget
    if inst.family == "interventions":
        return inst.structure["weights"].shape[1]
    if inst.family == "path":
        return J + 2 * B * 2 * len(inst.structure["edges"])  # pulls + walk steps × directed edges
    if inst.family == "scheduling":
        return J + J * 2 * B  # pulls + (arm, slot, worker)
    if inst.family == "capacity":
        return J + J * B  # pulls + (arm, worker)
    return J


def structure_tensors(instances: Sequence[Instance], device: torch.device) -> Structure:
    """The instances' parameters stacked along a leading batch dimension (same sizes)."""

    def stack(values: list[np.ndarray], dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.stack(values), dtype=dtype, device=device)

    out = {
        "p_passive": stack([i.p_passive for i in instances], torch.float64),
        "p_active": stack([i.p_active for i in instances], torch.float64),
        "rewards": stack([i.rewards for i in instances], torch.float64),
    }
    first = instances[0]
    for key in first.structure:
        values = [np.asarray(i.structure[key]) for i in instances]
        if any(v.shape != values[0].shape for v in values):
            raise ValueError(f"instances in one batch must have the same {key!r} shape")
        dtype = {np.dtype(bool): torch.bool, np.dtype(np.int64): torch.int64}.get(
            values[0].dtype, torch.float64
        )
        out[key] = stack(values, dtype)
    if first.family == "path":
        edges = out["edges"]
        out["tail"] = torch.cat([edges[..., 0], edges[..., 1]], dim=-1)  # (n, 2E)
        out["head"] = torch.cat([edges[..., 1], edges[..., 0]], dim=-1)
    if first.family == "scheduling":
        slots, workers = out["arm_slots"], out["worker_slots"]  # (n, J, 2), (n, B, K)
        # available[n, j, s, w]: worker w works in the arm's s-th slot
        out["available"] = torch.gather(
            workers.unsqueeze(1).expand(-1, slots.shape[1], -1, -1),
            3,
            slots.unsqueeze(2).expand(-1, -1, workers.shape[1], -1),
        ).transpose(2, 3)
    return out


# -- the rules, batched ----------------------------------------------------------------------
RULES = {
    "binary": "every entry is 0 or 1",
    "exactly_B": "exactly B interventions are chosen",
    "at_most_B": "at most B arms are pulled",
    "one_edge_per_step": "each step of the walk traverses exactly one edge",
    "walk_starts_and_ends_at_source": "the walk starts and ends at the source node",
    "walk_connected": "each step starts where the previous one ended",
    "pulls_visited": "only nodes the walk visits are pulled",
    "worker_available": "a worker serves an arm only in a slot where both are available",
    "two_distinct_workers": "a pulled arm has exactly two assignments, from two distinct workers; an unpulled arm none",
    "worker_once_per_slot": "a worker serves at most one arm per slot",
    "one_worker_per_pull": "a pulled arm is assigned to exactly one worker; an unpulled arm to none",
    "within_capacity": "each worker's assigned cost is within its capacity",
}


def violations(family: str, budget: int, x: torch.Tensor, S: Structure) -> dict[str, torch.Tensor]:
    """For actions ``x`` (n, dim) and stacked structures ``S``: rule name → (n,) bool, True
    where the action breaks the rule (see :data:`RULES`)."""
    n = x.shape[0]
    out = {
        "binary": ~((x == 0) | (x == 1)).flatten(1).all(1)
        if x.numel()
        else x.new_zeros(n, dtype=torch.bool)
    }
    xb = x.round().clamp(0, 1)
    if family == "interventions":
        out["exactly_B"] = xb.sum(1) != budget
        return out
    J = S["rewards"].shape[1]
    a = xb[:, :J]
    out["at_most_B"] = a.sum(1) > budget
    if family == "path":
        T = 2 * budget
        y = xb[:, J:].reshape(n, T, -1)
        out["one_edge_per_step"] = (y.sum(2) != 1).any(1)
        step = y.argmax(2)  # (n, T)
        tails = torch.gather(S["tail"], 1, step)
        heads = torch.gather(S["head"], 1, step)
        source = S["source"].unsqueeze(1)
        out["walk_starts_and_ends_at_source"] = (tails[:, :1] != source).squeeze(1) | (
            heads[:, -1:] != source
        ).squeeze(1)
        out["walk_connected"] = (heads[:, :-1] != tails[:, 1:]).any(1)
        visited = torch.zeros(n, J, dtype=torch.bool, device=x.device).scatter_(1, heads, True)
        out["pulls_visited"] = ((a > 0) & ~visited).any(1)
    elif family == "scheduling":
        z = xb[:, J:].reshape(n, J, 2, -1)
        out["worker_available"] = ((z > 0) & ~S["available"]).flatten(1).any(1)
        wrong_count = (z.sum((2, 3)) != 2 * a).any(1)  # two services if pulled, none if not
        same_worker_twice = (z.sum(2) > 1).flatten(1).any(1)
        out["two_distinct_workers"] = wrong_count | same_worker_twice
        K = S["worker_slots"].shape[2]
        slot_onehot = torch.nn.functional.one_hot(S["arm_slots"], K).to(z.dtype)  # (n, J, 2, K)
        load = torch.einsum("njsw,njsk->nwk", z, slot_onehot)
        out["worker_once_per_slot"] = (load > 1).flatten(1).any(1)
    elif family == "capacity":
        del out["at_most_B"]
        u = xb[:, J:].reshape(n, J, -1)
        out["one_worker_per_pull"] = (u.sum(2) != a).any(1)
        used = torch.einsum("nj,nji->ni", S["cost"].to(u.dtype), u)
        out["within_capacity"] = (used > S["capacity"]).any(1)
    return out


def arm_input(family: str, x: torch.Tensor, S: Structure) -> torch.Tensor:
    """What each arm receives, (n, J): its pull (0/1), or for interventions its dose
    ``x_j = Σ_i w_ji a_i``."""
    if family == "interventions":
        return torch.einsum("nji,ni->nj", S["weights"], x.to(torch.float64))
    return x[:, : S["rewards"].shape[1]].to(torch.float64)


def up_probability(family: str, arm_in: torch.Tensor, S: Structure) -> torch.Tensor:
    """The probability that each arm moves up, (n, J), given :func:`arm_input`."""
    if family == "interventions":
        return shifted_sigmoid(arm_in, S["alpha"], S["beta"], S["x0"])
    return S["p_passive"] + (S["p_active"] - S["p_passive"]) * arm_in


def shifted_sigmoid(
    x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, x0: torch.Tensor
) -> torch.Tensor:
    """``φ(x) = 0.98 [α σ(β x − x0) − α σ(−x0)] + 0.01`` (φ(0) = 0.01; rises to ≈ 0.98 α + 0.01)."""
    return 0.98 * alpha * (torch.sigmoid(beta * x - x0) - torch.sigmoid(-x0)) + 0.01


# -- the MILP --------------------------------------------------------------------------------
class _Rows:
    """Sparse rows built one at a time: ``lower ≤ Σ coef · x[col] ≤ upper``."""

    def __init__(self) -> None:
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(
        self, cols: Sequence[int], coefs: Sequence[float] | float, lower: float, upper: float
    ) -> None:
        cols = list(cols)
        values = [float(coefs)] * len(cols) if np.isscalar(coefs) else [float(c) for c in coefs]
        self.r.extend([len(self.lower)] * len(cols))
        self.c.extend(cols)
        self.v.extend(values)
        self.lower.append(lower)
        self.upper.append(upper)

    def milp(self, names: list[str], upper: np.ndarray | None = None) -> MILP:
        n = len(names)
        A = sp.csr_matrix((self.v, (self.r, self.c)), shape=(len(self.lower), n))
        A.sum_duplicates()
        return MILP(
            A,
            np.array(self.lower, dtype=np.float64),
            np.array(self.upper, dtype=np.float64),
            np.zeros(n),
            np.ones(n) if upper is None else upper.astype(np.float64),
            np.ones(n, dtype=bool),
            tuple(names),
        )


def feasible_milp(inst: Instance) -> MILP:
    """The feasible actions of ``inst`` as a MILP over exactly the action vector's entries."""
    J, B = inst.num_arms, inst.budget
    s = inst.structure
    names = action_names(inst)
    rows = _Rows()
    inf = np.inf
    if inst.family == "interventions":
        rows.add(range(len(names)), 1.0, B, B)
        return rows.milp(names)
    if inst.family != "capacity":
        rows.add(range(J), 1.0, -inf, B)
    upper = None
    if inst.family == "path":
        E = len(s["edges"])
        T, D = 2 * B, 2 * E
        tail = np.concatenate([s["edges"][:, 0], s["edges"][:, 1]])
        head = np.concatenate([s["edges"][:, 1], s["edges"][:, 0]])
        src = int(s["source"])

        def y(t: int, d: int | np.ndarray) -> int | np.ndarray:
            return J + t * D + d

        # a step can only use an edge whose tail the walk can be at (after t steps from the source)
        # and whose head can still return in time: the others are fixed to 0 (same set, smaller program)
        back = walk_reachability(inst)
        adjacency = np.zeros((J, J), dtype=bool)
        adjacency[tail, head] = True
        at = np.zeros(J, dtype=bool)
        at[src] = True
        upper = np.ones(len(names))
        for t in range(T):
            upper[y(t, np.arange(D))] = at[tail] & back[t + 1][head]
            at = (adjacency & at[:, None]).any(0)
        for t in range(T):
            rows.add(y(t, np.arange(D)), 1.0, 1, 1)
        rows.add(y(0, np.flatnonzero(tail == src)), 1.0, 1, 1)
        rows.add(y(T - 1, np.flatnonzero(head == src)), 1.0, 1, 1)
        for t in range(T - 1):
            for v in range(J):
                into, out = np.flatnonzero(head == v), np.flatnonzero(tail == v)
                rows.add([*y(t, into), *y(t + 1, out)], [1.0] * len(into) + [-1.0] * len(out), 0, 0)
        for v in range(J):
            into = np.flatnonzero(head == v)
            rows.add(
                [v, *[y(t, d) for t in range(T) for d in into]],
                [1.0] + [-1.0] * (T * len(into)),
                -inf,
                0,
            )
    elif inst.family == "scheduling":
        slots, workers = s["arm_slots"], s["worker_slots"]

        def z(j: int, k: int, w: int) -> int:
            return J + (j * 2 + k) * B + w

        upper = np.ones(len(names))
        for j in range(J):
            for k in range(2):
                for w in range(B):
                    upper[z(j, k, w)] = float(workers[w, slots[j, k]])
            rows.add(
                [j, *[z(j, k, w) for k in range(2) for w in range(B)]], [-2.0] + [1.0] * 2 * B, 0, 0
            )
            for w in range(B):
                rows.add([z(j, 0, w), z(j, 1, w)], 1.0, -inf, 1)
        for w in range(B):
            for slot in range(workers.shape[1]):
                cols = [z(j, k, w) for j in range(J) for k in range(2) if slots[j, k] == slot]
                if cols:
                    rows.add(cols, 1.0, -inf, 1)
    elif inst.family == "capacity":

        def u(j: int, i: int) -> int:
            return J + j * B + i

        for j in range(J):
            rows.add([j, *[u(j, i) for i in range(B)]], [-1.0] + [1.0] * B, 0, 0)
        for i in range(B):
            rows.add(
                [u(j, i) for j in range(J)],
                s["cost"].astype(np.float64),
                -inf,
                float(s["capacity"][i]),
            )
    return rows.milp(names, upper)


# -- random feasible actions -----------------------------------------------------------------
def walk_reachability(inst: Instance) -> np.ndarray:
    """``reach[t, v]``: from node ``v`` after ``t`` steps the walk can still end at the source
    after exactly ``2B − t`` more steps (t = 0..2B)."""
    J, T = inst.num_arms, 2 * inst.budget
    edges = inst.structure["edges"]
    adj = np.zeros((J, J), dtype=bool)
    adj[edges[:, 0], edges[:, 1]] = adj[edges[:, 1], edges[:, 0]] = True
    reach = np.zeros((T + 1, J), dtype=bool)
    reach[T, int(inst.structure["source"])] = True
    for t in range(T - 1, -1, -1):
        reach[t] = (adj & reach[t + 1][None, :]).any(1)
    return reach


@functools.lru_cache(maxsize=64)
def walk_steps(inst: Instance) -> list[list[list[int]]]:
    """``steps[t][v]``: the neighbours of ``v`` that step ``t`` (1..2B) of a walk at ``v`` may go
    to and still end at the source in time (cached per instance: samplers call it per action)."""
    J, B = inst.num_arms, inst.budget
    edges = inst.structure["edges"]
    reach = walk_reachability(inst)
    neighbours = [
        np.concatenate([edges[edges[:, 0] == v, 1], edges[edges[:, 1] == v, 0]]) for v in range(J)
    ]
    steps: list[list[list[int]]] = [[]]
    for t in range(1, 2 * B + 1):
        steps.append([[int(u) for u in neighbours[v] if reach[t, u]] for v in range(J)])
    return steps


def walk_action(inst: Instance, nodes: Sequence[int], pulls: Sequence[int]) -> np.ndarray:
    """The path action for the closed walk through ``nodes`` (source, v1, …, source: 2B + 1
    nodes) pulling the nodes ``pulls``."""
    J, E = inst.num_arms, len(inst.structure["edges"])
    index = {}
    for d, (a, b) in enumerate(inst.structure["edges"].tolist()):
        index[(a, b)], index[(b, a)] = d, d + E
    x = np.zeros(action_dim(inst))
    x[list(pulls)] = 1
    for t, (a, b) in enumerate(itertools.pairwise(nodes)):
        x[J + t * 2 * E + index[(a, b)]] = 1
    return x


def free_services(inst: Instance, arm: int, busy: np.ndarray) -> list[tuple[int, int]]:
    """Scheduling: the ``(k, w)`` pairs — the arm's ``k``-th slot, worker ``w`` — that can still
    serve ``arm`` (both available in that slot; ``busy[w, slot]`` marks the taken ones)."""
    slots, workers = inst.structure["arm_slots"], inst.structure["worker_slots"]
    return [
        (k, w)
        for k in range(2)
        for w in range(inst.budget)
        if workers[w, slots[arm, k]] and not busy[w, slots[arm, k]]
    ]


def serve(
    inst: Instance, x: np.ndarray, busy: np.ndarray, arm: int, pairs: Sequence[tuple[int, int]]
) -> None:
    """Scheduling: pull ``arm`` in action ``x`` with the two ``(k, w)`` services ``pairs``
    (distinct workers, from :func:`free_services`), marking them in ``busy``."""
    J, B = inst.num_arms, inst.budget
    for k, w in pairs:
        busy[w, inst.structure["arm_slots"][arm, k]] = True
        x[J + (arm * 2 + k) * B + w] = 1
    x[arm] = 1


def sample(inst: Instance, rng: np.random.Generator) -> np.ndarray:
    """A random feasible action of ``inst`` (not uniform over the set; every pull pattern the
    constructive procedure can reach has positive probability)."""
    J, B = inst.num_arms, inst.budget
    s = inst.structure
    x = np.zeros(action_dim(inst))
    if inst.family == "interventions":
        x[rng.choice(len(x), B, replace=False)] = 1
    elif inst.family == "budget":
        x[rng.choice(J, int(rng.integers(0, B + 1)), replace=False)] = 1
    elif inst.family == "path":
        steps = walk_steps(inst)
        nodes = [int(s["source"])]
        for t in range(1, 2 * B + 1):
            options = steps[t][nodes[-1]]
            nodes.append(options[int(rng.integers(len(options)))])
        visited = sorted(set(nodes))
        k = int(rng.integers(0, min(B, len(visited)) + 1))
        x = walk_action(inst, nodes, rng.choice(visited, k, replace=False).tolist())
    elif inst.family == "scheduling":
        busy = np.zeros_like(s["worker_slots"])
        pulled = 0
        for j in rng.permutation(J):
            if pulled == B or rng.random() < 0.5:
                continue
            free = free_services(inst, j, busy)
            if not free:
                continue
            first = free[int(rng.integers(len(free)))]
            second = [p for p in free if p[1] != first[1]]  # another worker
            if not second:
                continue
            serve(inst, x, busy, j, (first, second[int(rng.integers(len(second)))]))
            pulled += 1
    else:
        remaining = s["capacity"].astype(np.int64).copy()
        for j in rng.permutation(J):
            fits = np.flatnonzero(remaining >= s["cost"][j])
            if len(fits) == 0 or rng.random() < 0.5:
                continue
            i = int(rng.choice(fits))
            remaining[i] -= s["cost"][j]
            x[j] = x[J + j * B + i] = 1
    return x
