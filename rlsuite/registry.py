"""The one table of environment ids and agent names.

Environments are registered with gymnasium on ``import rlsuite``; each id has an
``entry_point`` (the single ``gymnasium.Env``) and a ``vector_entry_point`` (the native batched
``VectorEnv``). Agents are looked up by the name a config's ``agent.name`` gives.
Both tables import nothing heavy: classes are loaded on first use.

An entry's ``extra`` names the pip extra (``pip install 'rlsuite[EXTRA]'``) whose packages it
needs; when one of them is missing, loading the agent or making the env says which extra to
install, and ``rlsuite list`` marks the entry (:func:`extra_installed`).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment id."""

    id: str
    entry_point: str
    vector_entry_point: str
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    baselines: str | None = None  # module with episode_returns(name, make_env, seeds)
    has_model: bool = False  # the deterministic search model of rlsuite.model
    extra: str | None = None  # the pip extra the env needs to be made (see EXTRA_MODULES)


@dataclass(frozen=True)
class AgentEntry:
    """One agent name usable as ``agent.name`` in a config."""

    name: str
    target: str  # "module:Class"
    summary: str
    extra: str | None = None  # the pip extra it needs, if any

    def load(self) -> type:
        """Import and return the agent class (a clear error names the missing extra)."""
        return _load_object(self.target, self.extra, what=f"agent {self.name!r}")


EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "sb3": ("stable_baselines3", "sb3_contrib"),
    "ray": ("ray",),
    "mip": ("pyscipopt", "highspy"),
    "qcode": ("qldpc",),
    "bench": ("pyamg", "rebound"),
}
"""The top-level modules each pip extra of ``pyproject.toml`` installs."""


def extra_installed(extra: str) -> bool:
    """Whether every module of the pip extra ``extra`` is importable (found, not imported)."""
    if extra not in EXTRA_MODULES:
        raise ValueError(f"unknown pip extra {extra!r}; known: {', '.join(sorted(EXTRA_MODULES))}")
    return all(importlib.util.find_spec(module) is not None for module in EXTRA_MODULES[extra])


_SOR = "rlsuite.envs.sor"
_3B = "rlsuite.envs.threebody"
_RMAB = "rlsuite.envs.rmab"
_MALLOC = "rlsuite.envs.malloc"
_QCODE = "rlsuite.envs.qcode"
_RMAB_FAMILIES = {
    "Budget": (
        "budget",
        "restless bandits with a plain budget: pull at most B of J arms (Whittle's setting)",
    ),
    "Interventions": (
        "interventions",
        "coRMAB: choose exactly B of N interventions; arms respond to the sum (sigmoid)",
    ),
    "Path": (
        "path",
        "coRMAB: a closed walk of length 2B on a graph from a source; pull ≤ B visited nodes",
    ),
    "Scheduling": (
        "scheduling",
        "coRMAB: bipartite matching of pulled arms to (worker, timeslot) pairs",
    ),
    "Capacity": (
        "capacity",
        "coRMAB: pulled arms assigned to workers within each worker's capacity",
    ),
}
ENVS: dict[str, EnvEntry] = {
    e.id: e
    for e in [
        EnvEntry(
            "rlsuite/SOR-ShiftedLaplacian-v0",
            f"{_SOR}.env:SORShiftedLaplacianEnv",
            f"{_SOR}.vector:SORShiftedLaplacianVectorEnv",
            "choose SOR's ω for a sequence of shifted Laplacians A+cI, c=-0.15+0.6·Beta (Learning to Relax)",
            baselines=f"{_SOR}.baselines",
        ),
        EnvEntry(
            "rlsuite/SOR-ShiftedLaplacianContinuous-v0",
            f"{_SOR}.env:SORShiftedLaplacianEnv",
            f"{_SOR}.vector:SORShiftedLaplacianVectorEnv",
            "as SOR-ShiftedLaplacian-v0 with a continuous ω ∈ [1, 1.99] (Box action)",
            {"action_type": "continuous"},
            f"{_SOR}.baselines",
        ),
        EnvEntry(
            "rlsuite/SOR-Heat2D-v0",
            f"{_SOR}.env:SORHeat2DEnv",
            f"{_SOR}.vector:SORHeat2DVectorEnv",
            "choose SOR's ω for each Crank–Nicolson step of a 2-D heat equation, warm-started",
            baselines=f"{_SOR}.baselines",
        ),
        EnvEntry(
            "rlsuite/SOR-SparseSequence-v0",
            f"{_SOR}.env:SORSparseSequenceEnv",
            f"{_SOR}.vector:SORSparseSequenceVectorEnv",
            "choose SOR's ω for a user sequence of sparse SPD systems (Matrix Market or SciPy CSR)",
            baselines=f"{_SOR}.baselines",
        ),
        EnvEntry(
            "rlsuite/ThreeBody-v0",
            f"{_3B}.env:ThreeBodyEnv",
            f"{_3B}.vector:ThreeBodyVectorEnv",
            "choose the Hermite integrator's time-step parameter η every 0.1 yr of a chaotic triple",
            baselines=f"{_3B}.baselines",
        ),
        EnvEntry(
            "rlsuite/ThreeBody-Leapfrog-v0",
            f"{_3B}.env:ThreeBodyEnv",
            f"{_3B}.vector:ThreeBodyVectorEnv",
            "as ThreeBody-v0 with a fixed-step leapfrog (step η·t_coll per interval)",
            {"integrator": "leapfrog"},
            f"{_3B}.baselines",
        ),
        EnvEntry(
            "rlsuite/MallocGame-v0",
            f"{_MALLOC}.env:MallocGameEnv",
            f"{_MALLOC}.vector:MallocGameVectorEnv",
            "the mallocGame: map an ML program's buffers onto fast (25% of peak) or slow memory",
            baselines=f"{_MALLOC}.baselines",
            has_model=True,
        ),
        EnvEntry(
            "rlsuite/MallocPack-v0",
            f"{_MALLOC}.env:MallocPackEnv",
            f"{_MALLOC}.vector:MallocPackVectorEnv",
            "pack every buffer of an ML program into one memory, keeping the peak address low",
            baselines=f"{_MALLOC}.baselines",
            has_model=True,
        ),
        EnvEntry(
            "rlsuite/QCode-WeightReduction-v0",
            f"{_QCODE}.env:WeightReductionEnv",
            f"{_QCODE}.weight_reduction:WeightReductionVectorEnv",
            "copy qubits, gauge checks, thicken (Hastings / Sabo) until check weight and degree ≤ 6",
            baselines=f"{_QCODE}.baselines",
            has_model=True,
        ),
        EnvEntry(
            "rlsuite/QCode-TannerEdit-v0",
            f"{_QCODE}.env:TannerEditEnv",
            f"{_QCODE}.tanner_edit:TannerEditVectorEnv",
            "toggle edges of a classical Tanner graph (degrees ≤ 3) to improve k·d²/n of HGP(H, H)",
            baselines=f"{_QCODE}.baselines",
            has_model=True,
        ),
    ]
    + [
        EnvEntry(
            f"rlsuite/CoRMAB-{name}-v0",
            f"{_RMAB}.env:CoRMABEnv",
            f"{_RMAB}.vector:CoRMABVectorEnv",
            summary,
            {"family": family},
            f"{_RMAB}.baselines",
        )
        for name, (family, summary) in _RMAB_FAMILIES.items()
    ]
}

AGENTS: dict[str, AgentEntry] = {
    a.name: a
    for a in [
        AgentEntry(
            "tsallis_inf",
            "rlsuite.agents.tsallis_inf:TsallisINF",
            "Tsallis-INF bandit over a discrete action grid (Zimmert & Seldin 2021; Khodak et al. 2024)",
        ),
        AgentEntry(
            "tsallis_inf_cb",
            "rlsuite.agents.tsallis_inf:TsallisINFContextBins",
            "Tsallis-INF with one learner per bin of the scalar context (Khodak et al. 2024)",
        ),
        AgentEntry(
            "chebcb",
            "rlsuite.agents.chebcb:ChebCB",
            "contextual bandit: Chebyshev-feature regression per arm + inverse-gap weighting",
        ),
    ]
    + [
        AgentEntry(
            f"rmab.{baseline}",
            f"rlsuite.agents.heuristic:{cls}",
            f"coRMAB baseline (plays, does not learn): {summary}",
            extra="mip" if baseline.startswith("greedy") else None,  # a MILP per action
        )
        for baseline, cls, summary in (
            ("do-nothing", "DoNothing", "pull no arm"),
            ("random", "RandomFeasible", "a random feasible action"),
            (
                "sampling",
                "Sampling",
                "best of 100 random feasible actions by one-step expected reward",
            ),
            ("greedy", "Greedy", "one-step greedy MILP over the exact feasible set (HiGHS)"),
            (
                "greedy:scip",
                "GreedySCIP",
                "one-step greedy MILP over the exact feasible set (SCIP)",
            ),
            ("iterative", "IterativeGreedy", "add arms by marginal one-step gain while feasible"),
            ("whittle", "Whittle", "Whittle-index policy (the decoupled 'budget' family)"),
        )
    ]
    + [
        AgentEntry(
            f"malloc.{baseline}",
            f"rlsuite.agents.heuristic:{cls}",
            f"mallocGame baseline (plays, does not learn): {summary}",
        )
        for baseline, cls, summary in (
            ("best-fit", "MallocBestFit", "XLA-like best fit (packing: size-descending best fit)"),
            ("first-fit", "MallocFirstFit", "the lowest offset where the buffer fits"),
            ("random", "MallocRandom", "a uniformly random legal action"),
            ("slow", "MallocSlow", "mapping: every buffer stays in slow memory"),
        )
    ]
    + [
        AgentEntry("sb3.PPO", "rlsuite.integrations.sb3:SB3PPO", "Stable-Baselines3 PPO", "sb3"),
        AgentEntry("sb3.DQN", "rlsuite.integrations.sb3:SB3DQN", "Stable-Baselines3 DQN", "sb3"),
        AgentEntry("sb3.SAC", "rlsuite.integrations.sb3:SB3SAC", "Stable-Baselines3 SAC", "sb3"),
        AgentEntry(
            "sb3.MaskablePPO",
            "rlsuite.integrations.sb3:SB3MaskablePPO",
            "sb3-contrib PPO with invalid-action masking (envs with info['action_mask'])",
            "sb3",
        ),
        AgentEntry(
            "rllib.PPO",
            "rlsuite.integrations.rllib:RLlibPPO",
            "Ray RLlib PPO (new API stack), sampling with the native batched env",
            "ray",
        ),
        AgentEntry(
            "rllib.DQN",
            "rlsuite.integrations.rllib:RLlibDQN",
            "Ray RLlib DQN (new API stack, Discrete actions), sampling with the native batched env",
            "ray",
        ),
    ]
}


#: Python entry-point groups through which other packages add envs and agents to rlsuite.
PLUGIN_GROUPS = ("rlsuite.envs", "rlsuite.agents")


def load_plugins() -> list[str]:
    """Add the envs and agents that installed packages declare as entry points, and return a
    message per plugin that could not be added (``import rlsuite`` warns with them).

    * ``rlsuite.agents``: ``NAME = "module:Class"`` — an :class:`~rlsuite.agents.base.Agent`
      subclass, usable as ``agent.name: NAME`` (imported on first use, like rlsuite's own);
    * ``rlsuite.envs``: ``NAME = "module:attribute"`` — an iterable of :class:`EnvEntry` (or a
      function returning one); each id is registered with gymnasium like rlsuite's own, with its
      native batched env as the vector entry point.

    A plugin never replaces a name or id that is already taken."""
    from importlib.metadata import entry_points

    problems: list[str] = []
    for ep in entry_points(group="rlsuite.agents"):
        if ep.name in AGENTS:
            if AGENTS[ep.name].target != ep.value:
                problems.append(f"agent plugin {ep.name!r} ({ep.value}): the name is taken")
            continue
        source = ep.dist.name if ep.dist is not None else "a plugin"
        AGENTS[ep.name] = AgentEntry(ep.name, ep.value, f"agent from the package {source}")
    for ep in entry_points(group="rlsuite.envs"):
        try:
            loaded = ep.load()
            entries = list(loaded() if callable(loaded) else loaded)
        except Exception as err:  # a broken plugin must not break rlsuite
            problems.append(f"env plugin {ep.name!r} ({ep.value}) failed to load: {err!r}")
            continue
        for entry in entries:
            if not isinstance(entry, EnvEntry):
                problems.append(
                    f"env plugin {ep.name!r} ({ep.value}) gave {type(entry).__name__}, "
                    "not an rlsuite.registry.EnvEntry"
                )
            elif entry.id in ENVS and ENVS[entry.id] != entry:
                problems.append(f"env plugin {ep.name!r}: the id {entry.id!r} is taken")
            else:
                ENVS[entry.id] = entry
    return problems


def register_envs() -> None:
    """Register every id in :data:`ENVS` with gymnasium (idempotent).

    An entry with an ``extra`` is registered with :class:`EntryPointNeedingExtra` entry points,
    so that ``gym.make`` / ``gym.make_vec`` without the extra's packages say what to install."""
    for entry in ENVS.values():
        if entry.id in gym.registry:
            continue
        entry_point: Any = entry.entry_point
        vector_entry_point: Any = entry.vector_entry_point
        if entry.extra is not None:
            what = f"environment {entry.id!r}"
            entry_point = EntryPointNeedingExtra(entry.entry_point, entry.extra, what)
            vector_entry_point = EntryPointNeedingExtra(entry.vector_entry_point, entry.extra, what)
        gym.register(
            id=entry.id,
            entry_point=entry_point,
            vector_entry_point=vector_entry_point,
            kwargs=dict(entry.kwargs),
        )


@dataclass(frozen=True)
class EntryPointNeedingExtra:
    """A gymnasium entry point (``"module:Class"``) that is imported when called; a missing
    optional package, at import or construction, is an ``ImportError`` that names the pip
    extra to install."""

    target: str
    extra: str
    what: str

    def __call__(self, **kwargs: Any) -> Any:
        creator = _load_object(self.target, self.extra, what=self.what)
        try:
            return creator(**kwargs)
        except ModuleNotFoundError as err:
            if (err.name or "").startswith("rlsuite"):
                raise
            raise _missing_extra(err, self.extra, self.what) from err


def ids_with_model() -> list[str]:
    """The environment ids whose envs implement the search model (:mod:`rlsuite.model`)."""
    return [entry.id for entry in ENVS.values() if entry.has_model]


def get_agent_class(name: str) -> type:
    """The agent class registered under ``name``; unknown names list the known ones."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")
    if name in _REGISTERED_CLASSES:
        return _REGISTERED_CLASSES[name]
    return AGENTS[name].load()


_REGISTERED_CLASSES: dict[str, type] = {}


def register_agent(agent_class: type, summary: str | None = None) -> None:
    """Make an :class:`~rlsuite.agents.base.Agent` subclass usable by its ``name`` (configs,
    :func:`rlsuite.training.train`, ``rlsuite eval`` in this process). Installed packages
    declare theirs as ``rlsuite.agents`` entry points instead (:func:`load_plugins`), which the
    command line finds in every process."""
    from rlsuite.agents.base import Agent

    if not (isinstance(agent_class, type) and issubclass(agent_class, Agent)):
        raise TypeError(f"register_agent needs an Agent subclass, got {agent_class!r}")
    name = agent_class.name
    target = f"{agent_class.__module__}:{agent_class.__qualname__}"
    if name in AGENTS and AGENTS[name].target != target:
        raise ValueError(f"the agent name {name!r} is taken by {AGENTS[name].target}")
    doc = (agent_class.__doc__ or "").strip().splitlines()
    AGENTS[name] = AgentEntry(name, target, summary or (doc[0] if doc else name))
    _REGISTERED_CLASSES[name] = agent_class


def _load_object(target: str, extra: str | None, *, what: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if extra is None or (err.name or "").startswith("rlsuite"):
            raise
        raise _missing_extra(err, extra, what) from err
    return getattr(module, attr)


def _missing_extra(err: ModuleNotFoundError, extra: str, what: str) -> ImportError:
    return ImportError(
        f"{what} needs the optional dependency {err.name!r}: pip install 'rlsuite[{extra}]'"
    )
