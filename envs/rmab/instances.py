"""coRMAB instances: the arms' Markov chains and rewards, and each family's constraint data.

Source: Xu, Wilder, Khalil & Tambe, "Reinforcement learning with combinatorial actions for
coupled restless bandits" (ICLR 2025, arXiv 2503.01919).

**Arms.** Arm ``j`` has 4 states and is a birth–death chain: from ``s`` it moves up to
``min(s+1, 3)`` with probability ``p_j`` and down to ``max(s−1, 0)`` otherwise. For the
pull-based families ``p_j = p_passive[j] ~ U[0, 0.2]`` when the arm is left alone and
``p_active[j] ~ U[0.7, 0.9]`` when it is pulled. The reward is earned on the *next* state,
``r_j(s')``: the first ``B`` arms pay ``[0.2, 0.15, 0.1, R_top]`` with ``R_top ∈ {4, 5, 6}``,
the others ``[0.1, 0.15, 0.2, R_top]`` with ``R_top ∈ {1, 2, 3}`` — low states of the valuable
arms pay *more* than the next state up, so a one-step greedy planner avoids them.

**Families** (``family=``; each adds its constraint data):

* ``"budget"`` — no coupling: pull at most ``B`` arms (the classic RMAB; Whittle's setting).
* ``"interventions"`` — ``N`` interventions (``num_interventions``, default ``2B``: the paper's
  N = 10 for B = 5), choose exactly ``B``. Arm ``j`` receives the dose ``x_j = Σ_i w_ji a_i``
  (``weights``, ``w_ji ∈ {0, 3}``) and moves up with probability
  ``φ_j(x) = 0.98 [α_j σ(β_j x − x0_j) − α_j σ(−x0_j)] + 0.01`` (``φ_j(0) = 0.01``). The last
  ``⌈J B / N⌉`` arms are "good": α ∈ [0.7, 1], β ∈ [1.4, 1.9], x0 ∈ {9, 10}, so they need 2–3
  coordinated interventions; the others are "bad": α ∈ [0.2, 0.5], β = 1, x0 ∈ {1, 2} — one
  intervention helps and more saturates low. ``B`` of the interventions (drawn at random) act on
  good arms, the rest on bad ones; each group of three interventions of one kind shares three
  arms of that kind (dose 9 when all three are chosen) and a leftover intervention reaches three
  arms alone (the construction of the paper's code, github.com/lily-x/combinatorial-rmab).
* ``"path"`` — the arms are the nodes of a connected graph (``edges``, shape ``(E, 2)``); the
  action is a closed walk of exactly ``2B`` edge traversals from ``source`` (node 0), and at most
  ``B`` of the visited nodes are pulled. The default graph is random and planar-like: ``J``
  points uniform in the unit square, their Euclidean minimum spanning tree plus the shortest
  other Delaunay edges up to ``num_edges`` edges (29 for J = 20, 56 for 40, 133 for 100;
  ``round(1.4 J)`` otherwise). (The paper uses subgraphs of the London Underground with these
  edge counts; that data is not redistributed here — load such a graph as an edge list.)
* ``"scheduling"`` (bipartite matching) — ``B`` workers, ``K = 5`` timeslots; arm ``j`` is
  available in 2 distinct slots (``arm_slots``, shape ``(J, 2)``), worker ``w`` in 3
  (``worker_slots``, boolean ``(B, K)``). A pulled arm needs two (worker, slot) assignments from
  two distinct workers, each in a slot where both are available; a worker serves at most one
  arm per slot; at most ``B`` arms are pulled.
* ``"capacity"`` — ``B`` workers with capacities ``capacity ~ U{2..7}``, arm costs
  ``cost ~ U{2..6}``; a pulled arm is assigned to one worker and each worker's assigned cost
  stays within its capacity.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed (and sizes) gives the
same instance. :func:`save_instance` / :func:`load_instance` write and read it as JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.spatial

FAMILIES = ("budget", "interventions", "path", "scheduling", "capacity")
NUM_STATES = 4
DEFAULT_NUM_EDGES = {20: 29, 40: 56, 100: 133}
WEIGHT = 3.0  # w_ji for a connected (intervention, arm) pair

# what each family stores in Instance.structure, and its dtype
_STRUCTURE: dict[str, dict[str, Any]] = {
    "budget": {},
    "interventions": {
        "weights": np.float64,
        "alpha": np.float64,
        "beta": np.float64,
        "x0": np.float64,
    },
    "path": {"edges": np.int64, "source": np.int64},
    "scheduling": {"arm_slots": np.int64, "worker_slots": bool},
    "capacity": {"capacity": np.int64, "cost": np.int64},
}


@dataclass(frozen=True, eq=False)
class Instance:
    """One coRMAB instance (see the module docstring for every field's meaning); compared and
    hashed by identity."""

    family: str
    budget: int
    p_passive: np.ndarray  # (J,) up-probability when not pulled (unused by "interventions")
    p_active: np.ndarray  # (J,) up-probability when pulled (unused by "interventions")
    rewards: np.ndarray  # (J, 4) reward r_j(s') on the next state
    structure: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_arms(self) -> int:
        return len(self.rewards)

    def __post_init__(self) -> None:
        validate(self)


def _fail(message: str) -> None:
    raise ValueError(f"invalid coRMAB instance: {message}")


def validate(inst: Instance) -> None:
    """Clear errors for an inconsistent instance (sizes, ranges, a disconnected graph, ...)."""
    if inst.family not in FAMILIES:
        _fail(f"unknown family {inst.family!r}; known: {', '.join(FAMILIES)}")
    J = len(inst.rewards)
    if np.shape(inst.rewards) != (J, NUM_STATES) or J < 1:
        _fail(f"rewards must have shape (J, {NUM_STATES}) with J ≥ 1, got {np.shape(inst.rewards)}")
    for key in ("p_passive", "p_active"):
        p = getattr(inst, key)
        if np.shape(p) != (J,) or not np.all((p >= 0) & (p <= 1)):
            _fail(f"{key} must be {J} probabilities in [0, 1]")
    if not np.all(np.isfinite(inst.rewards)):
        _fail("rewards must be finite")
    if not 1 <= inst.budget <= J:
        _fail(f"budget B must be in [1, J = {J}], got {inst.budget}")
    expected = set(_STRUCTURE[inst.family])
    if set(inst.structure) != expected:
        _fail(
            f"family {inst.family!r} needs structure keys {sorted(expected)}, got {sorted(inst.structure)}"
        )
    s = inst.structure
    if inst.family == "interventions":
        N = s["weights"].shape[1] if s["weights"].ndim == 2 else -1
        if s["weights"].shape != (J, N) or not np.all(np.isin(s["weights"], (0.0, WEIGHT))):
            _fail(f"weights must be a (J, N) matrix of 0 and {WEIGHT:g}")
        if inst.budget > N:
            _fail(f"budget B = {inst.budget} exceeds the N = {N} interventions")
        for key in ("alpha", "beta", "x0"):
            if s[key].shape != (J,):
                _fail(f"{key} must have shape ({J},)")
    elif inst.family == "path":
        edges = s["edges"]
        if edges.ndim != 2 or edges.shape[1] != 2 or len(edges) == 0:
            _fail(f"edges must be a non-empty (E, 2) array of node pairs, got shape {edges.shape}")
        if edges.min() < 0 or edges.max() >= J or np.any(edges[:, 0] == edges[:, 1]):
            _fail(f"edges must join two different nodes in [0, {J - 1}]")
        if len({tuple(sorted(e)) for e in edges.tolist()}) != len(edges):
            _fail("edges must not repeat")
        if not 0 <= int(s["source"]) < J:
            _fail(f"source must be a node in [0, {J - 1}], got {int(s['source'])}")
        graph = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(J, J))
        count, labels = csgraph.connected_components(graph, directed=False)
        if count != 1:
            _fail(
                f"the graph must be connected; it has {count} components (e.g. nodes {np.flatnonzero(labels != labels[0])[:5].tolist()} are cut off from node 0)"
            )
    elif inst.family == "scheduling":
        arm_slots, worker_slots = s["arm_slots"], s["worker_slots"]
        if worker_slots.ndim != 2 or worker_slots.shape[0] != inst.budget:
            _fail(f"worker_slots must be a boolean (B = {inst.budget}, K) matrix")
        K = worker_slots.shape[1]
        if arm_slots.shape != (J, 2) or arm_slots.min() < 0 or arm_slots.max() >= K:
            _fail(f"arm_slots must be a (J, 2) array of slots in [0, {K - 1}]")
        if np.any(arm_slots[:, 0] == arm_slots[:, 1]):
            _fail("each arm's two slots must differ")
    elif inst.family == "capacity":
        if s["capacity"].shape != (inst.budget,) or np.any(s["capacity"] < 0):
            _fail(f"capacity must be {inst.budget} non-negative integers (one per worker)")
        if s["cost"].shape != (J,) or np.any(s["cost"] <= 0):
            _fail(f"cost must be {J} positive integers (one per arm)")


def generate(
    family: str,
    num_arms: int,
    budget: int,
    seed: int,
    *,
    num_interventions: int | None = None,
    num_edges: int | None = None,
    num_slots: int | None = None,
) -> Instance:
    """A random instance of ``family`` with ``num_arms`` arms and budget ``budget``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown coRMAB family {family!r}; known: {', '.join(FAMILIES)}")
    J, B = num_arms, budget
    if not isinstance(J, int) or J < 2:
        raise ValueError(f"num_arms must be an int ≥ 2, got {J!r}")
    if not isinstance(B, int) or not 1 <= B <= J:
        raise ValueError(f"budget must be an int in [1, num_arms = {J}], got {B!r}")
    rng = np.random.default_rng(seed)
    p_passive = rng.uniform(0.0, 0.2, J)
    p_active = rng.uniform(0.7, 0.9, J)
    valuable = np.arange(J) < B
    rewards = np.where(valuable[:, None], [0.2, 0.15, 0.1, 0.0], [0.1, 0.15, 0.2, 0.0])
    rewards[:, 3] = np.where(valuable, rng.integers(4, 7, J), rng.integers(1, 4, J))
    structure: dict[str, np.ndarray]
    if family == "budget":
        structure = {}
    elif family == "interventions":
        N = 2 * B if num_interventions is None else num_interventions
        structure = _interventions(rng, J, B, N)
    elif family == "path":
        structure = {"edges": planar_graph(J, num_edges, rng), "source": np.int64(0)}
    elif family == "scheduling":
        num_slots = 5 if num_slots is None else num_slots
        if num_slots < 3:
            raise ValueError(f"num_slots must be ≥ 3 (workers are available in 3), got {num_slots}")
        arm_slots = np.stack([rng.choice(num_slots, 2, replace=False) for _ in range(J)])
        worker_slots = np.zeros((B, num_slots), dtype=bool)
        for w in range(B):
            worker_slots[w, rng.choice(num_slots, 3, replace=False)] = True
        structure = {"arm_slots": arm_slots, "worker_slots": worker_slots}
    else:
        structure = {"capacity": rng.integers(2, 8, B), "cost": rng.integers(2, 7, J)}
    return Instance(family, B, p_passive, p_active, rewards, structure)


def _interventions(rng: np.random.Generator, J: int, B: int, N: int) -> dict[str, np.ndarray]:
    if not isinstance(N, int) or N < B:
        raise ValueError(f"num_interventions must be an int ≥ budget = {B}, got {N!r}")
    num_good = min(J, math.ceil(J * B / N))
    good = np.arange(J) >= J - num_good
    good_interventions = np.zeros(N, dtype=bool)
    good_interventions[rng.choice(N, B, replace=False)] = True
    weights = np.zeros((J, N))
    uses = np.zeros(J)
    for kind in (True, False):
        members = rng.permutation(np.flatnonzero(good_interventions == kind))
        arms = np.flatnonzero(good == kind)
        if len(arms) == 0:
            arms = np.arange(J)
        groups = [members[i : i + 3] for i in range(0, len(members) - len(members) % 3, 3)]
        groups += [members[i : i + 1] for i in range(len(members) - len(members) % 3, len(members))]
        for group in groups:
            # three arms of this kind, the least used first (ties at random)
            order = np.lexsort((rng.random(len(arms)), uses[arms]))
            reached = arms[order[: min(3, len(arms))]]
            weights[np.ix_(reached, group)] = WEIGHT
            uses[reached] += 1
    return {
        "weights": weights,
        "alpha": np.where(good, rng.uniform(0.7, 1.0, J), rng.uniform(0.2, 0.5, J)),
        "beta": np.where(good, rng.uniform(1.4, 1.9, J), 1.0),
        "x0": np.where(good, rng.integers(9, 11, J), rng.integers(1, 3, J)).astype(np.float64),
    }


def planar_graph(num_nodes: int, num_edges: int | None, rng: np.random.Generator) -> np.ndarray:
    """A connected planar graph: the Euclidean minimum spanning tree of random points in the
    unit square plus their shortest other Delaunay edges, ``num_edges`` edges in all (default:
    ``DEFAULT_NUM_EDGES``, else ``round(1.4 J)``, capped at the Delaunay edges of the points)."""
    J = num_nodes
    points = rng.random((J, 2))
    if J < 3:
        candidates = np.array([[0, 1]])
    else:
        tri = scipy.spatial.Delaunay(points)
        pairs = {
            tuple(sorted((int(a), int(b))))
            for simplex in tri.simplices
            for a, b in (
                (simplex[0], simplex[1]),
                (simplex[1], simplex[2]),
                (simplex[0], simplex[2]),
            )
        }
        candidates = np.array(sorted(pairs))
    if num_edges is None:  # the default, kept inside what J nodes allow (a few nodes: few edges)
        E = min(max(DEFAULT_NUM_EDGES.get(J, round(1.4 * J)), J - 1), len(candidates))
    else:
        E = num_edges
    if not J - 1 <= E <= len(candidates):
        raise ValueError(
            f"num_edges must be in [{J - 1}, {len(candidates)}] for a connected planar graph of {J} nodes, got {E}"
        )
    length = np.linalg.norm(points[candidates[:, 0]] - points[candidates[:, 1]], axis=1)
    weights = sp.coo_matrix((length, (candidates[:, 0], candidates[:, 1])), shape=(J, J))
    tree = csgraph.minimum_spanning_tree(weights).tocoo()
    in_tree = {tuple(sorted((int(a), int(b)))) for a, b in zip(tree.row, tree.col, strict=True)}
    order = np.argsort(length, kind="stable")
    extra = [tuple(candidates[i]) for i in order if tuple(candidates[i]) not in in_tree]
    edges = sorted(in_tree) + sorted(extra[: E - len(in_tree)])
    return np.array(edges, dtype=np.int64)


def read_edge_list(path: str | Path) -> np.ndarray:
    """A user graph: one edge ``u v`` per line (0-based node ids; ``#`` starts a comment)."""
    rows: list[tuple[int, int]] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#", 1)[0].split()
        if not text:
            continue
        if len(text) != 2 or not all(t.lstrip("-").isdigit() for t in text):
            raise ValueError(f"{path}:{number}: expected two integer node ids 'u v', got {line!r}")
        rows.append((int(text[0]), int(text[1])))
    if not rows:
        raise ValueError(f"{path}: the edge list is empty")
    return np.array(rows, dtype=np.int64)


def with_graph(inst: Instance, edges: np.ndarray, source: int = 0) -> Instance:
    """``inst`` (a path instance) on the user graph ``edges`` (validated: connected, J nodes)."""
    if inst.family != "path":
        raise ValueError(f"a graph applies to the 'path' family only, not {inst.family!r}")
    return Instance(
        inst.family,
        inst.budget,
        inst.p_passive,
        inst.p_active,
        inst.rewards,
        {"edges": np.asarray(edges, dtype=np.int64), "source": np.int64(source)},
    )


def save_instance(inst: Instance, path: str | Path) -> None:
    """Write ``inst`` as JSON (read back with :func:`load_instance`)."""
    data = {
        "format": "rlsuite-cormab-instance/1",
        "family": inst.family,
        "budget": inst.budget,
        "p_passive": inst.p_passive.tolist(),
        "p_active": inst.p_active.tolist(),
        "rewards": inst.rewards.tolist(),
        "structure": {k: np.asarray(v).tolist() for k, v in inst.structure.items()},
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def load_instance(path: str | Path) -> Instance:
    """Read and validate an instance written by :func:`save_instance`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read a coRMAB instance from {str(path)!r}: {err}") from err
    required = {"family", "budget", "p_passive", "p_active", "rewards", "structure"}
    if not isinstance(data, dict) or not required <= set(data):
        raise ValueError(
            f"{path}: a coRMAB instance file is a JSON object with keys {sorted(required)}"
        )
    family = data["family"]
    if family not in FAMILIES:
        raise ValueError(f"{path}: unknown family {family!r}; known: {', '.join(FAMILIES)}")
    dtypes = _STRUCTURE[family]
    unknown = set(data["structure"]) - set(dtypes)
    if unknown:
        raise ValueError(
            f"{path}: family {family!r} has no structure keys {sorted(unknown)}; expected {sorted(dtypes)}"
        )
    try:
        return Instance(
            family,
            int(data["budget"]),
            np.asarray(data["p_passive"], dtype=np.float64),
            np.asarray(data["p_active"], dtype=np.float64),
            np.asarray(data["rewards"], dtype=np.float64),
            {k: np.asarray(v, dtype=dtypes[k]) for k, v in data["structure"].items()},
        )
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
