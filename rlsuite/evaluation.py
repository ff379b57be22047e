"""``rlsuite eval``: a trained agent and the env's baselines on held-out seeds.

Each seed is one episode; the agent acts deterministically. The agent and every baseline
play the *same* episodes (same seeds, so the same instances), and each row of the report gives
the mean episode return with a 95% Student-t confidence interval over episodes, and the
quartiles of the env's episode metrics (``episode_metrics``: e.g. the three-body final energy
error and force evaluations) and of the agent's own (:attr:`Agent.episode_metrics
<rlsuite.agents.base.Agent.episode_metrics>`: e.g. search nodes per episode). ``agent_params``
override fields of the agent's ``Config`` for the evaluation (``--agent-param``), checked before
any episode is played, and the report names them. A family's baselines module may expand shorthand names
(``expand_baselines``) and draw the evaluation (``plot_evaluation``, see :func:`write_plot`). Seeds that the
training run used are refused, so a reported number is never measured on training data.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.stats
import torch

from rlsuite.config import (
    ConfigError,
    EnvConfig,
    ExperimentConfig,
    config_to_dict,
    parse_seed_range,
)
from rlsuite.registry import ENVS, get_agent_class
from rlsuite.runs import RunDir, load_checkpoint
from rlsuite.training import make_env
from rlsuite.vector import BatchedVectorEnv

_MAKE_VEC_KEYS = ("device", "num_envs", "vectorization_mode", "vector_kwargs", "wrappers")


@dataclass(frozen=True)
class EvalRow:
    """One policy's result over the evaluation episodes."""

    policy: str
    episodes: int
    mean_return: float
    ci95_low: float
    ci95_high: float
    mean_episode_length: float
    metrics: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Per episode metric (the env's ``episode_metrics`` and the agent's): (q25, median, q75)
    over episodes."""
    agent_params: dict[str, Any] = field(default_factory=dict)
    """The agent's config fields overridden for this evaluation (``--agent-param``), dotted key
    -> the value used; empty for baselines and for an agent evaluated as trained."""
    checkpoint: str | None = None
    """The agent's row: the checkpoint file evaluated (None for baselines)."""
    step: int | None = None
    """The agent's row: the training step of that checkpoint (None if it does not say)."""
    training_seeds: list[int] | None = None
    """The agent's row: the env seeds the training played (refused as evaluation seeds);
    None when the checkpoint and its run record none (then ``notes`` says so)."""
    notes: list[str] = field(default_factory=list)
    """Warnings about this row: checkpoints skipped because they do not load, training seeds
    that could not be checked."""


@dataclass(frozen=True)
class EpisodeResults:
    """One value per episode: the return, the length and each episode metric: the env's (an
    ``info`` value at the episode's last step, e.g. the three-body final energy error) and the
    agent's (:meth:`Agent.pop_episode_metrics <rlsuite.agents.base.Agent.pop_episode_metrics>`
    when the episode ends)."""

    returns: np.ndarray
    lengths: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean (a single value has a zero-width one)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = float(
        scipy.stats.t.ppf(0.5 + level / 2, len(values) - 1)
        * values.std(ddof=1)
        / math.sqrt(len(values))
    )
    return mean, mean - half, mean + half


def run_agent_episodes(agent: Any, env: BatchedVectorEnv, seeds: Sequence[int]) -> EpisodeResults:
    """One episode per seed, all in one batch. ``agent`` needs only
    ``predict(obs, deterministic=True)``. The env's ``episode_metrics`` (info keys) are recorded
    at each episode's last step; an agent that declares ``episode_metrics`` of its own is asked
    for them (``pop_episode_metrics(env_ids)``) with the ids of the envs whose episodes end at a
    step, and once with every id before the first step (what it counted before is dropped)."""
    env_keys = tuple(getattr(env, "episode_metrics", ()))
    agent_keys = tuple(getattr(agent, "episode_metrics", ()))
    shared = sorted(set(env_keys) & set(agent_keys))
    if shared:
        raise ValueError(
            f"{type(agent).__name__}.episode_metrics {shared} has the same names as the env's "
            f"episode_metrics {list(env_keys)}; rename the agent's"
        )
    obs, _ = env.reset(seed=list(seeds))
    returns = torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)
    lengths = torch.zeros(env.num_envs, dtype=torch.int64, device=env.device)
    running = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    final = {
        k: torch.zeros(env.num_envs, dtype=torch.float64, device=env.device)
        for k in env_keys + agent_keys
    }
    if agent_keys:
        _pop_agent_metrics(agent, torch.arange(env.num_envs, device=env.device), agent_keys)
    while bool(running.any()):
        actions = agent.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(actions)
        returns += torch.where(running, reward.to(torch.float64), 0.0)
        lengths += running.long()
        ending = running & (terminated | truncated)
        for k in env_keys:
            final[k] = torch.where(ending, info[k].to(torch.float64), final[k])
        if agent_keys and bool(ending.any()):
            ids = ending.nonzero().squeeze(1)
            for k, v in _pop_agent_metrics(agent, ids, agent_keys).items():
                final[k][ids] = v
        running = running & ~ending
    return EpisodeResults(
        returns.cpu().numpy(),
        lengths.cpu().numpy(),
        {k: v.cpu().numpy() for k, v in final.items()},
    )


def _pop_agent_metrics(
    agent: Any, ids: torch.Tensor, keys: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """``agent.pop_episode_metrics(ids)``, checked: every declared key, one value per id."""
    values = agent.pop_episode_metrics(ids)
    if set(values) != set(keys):
        raise ValueError(
            f"{type(agent).__name__}.pop_episode_metrics returned the keys {sorted(values)}, "
            f"but its episode_metrics are {sorted(keys)}"
        )
    out = {}
    for k in keys:
        value = torch.as_tensor(values[k]).to(device=ids.device, dtype=torch.float64)
        if value.shape != ids.shape:
            raise ValueError(
                f"{type(agent).__name__}.pop_episode_metrics()[{k!r}] has shape "
                f"{tuple(value.shape)}; expected one value per env id, {tuple(ids.shape)}"
            )
        out[k] = value
    return out


def resolve_checkpoint(target: str | Path) -> tuple[Path, RunDir | None, list[str]]:
    """``(checkpoint, run, notes)``: a run directory's latest checkpoint that loads (``notes``
    names every later one skipped because it does not load), or the checkpoint file itself.
    A run whose checkpoint files all fail to load is an error that names each file."""
    path = Path(target)
    if path.is_dir():
        run = RunDir.open(path)
        checkpoint, skipped = run.find_checkpoint()
        if checkpoint is None:
            raise ValueError(f"run directory {str(path)!r} has no checkpoint yet")
        notes = [f"skipped a checkpoint that does not load: {message}" for message in skipped]
        return checkpoint, run, notes
    if not path.exists():
        raise ValueError(f"{str(path)!r} is neither a run directory nor a checkpoint file")
    return path, None, []


def training_seeds(meta: Mapping[str, Any], run: RunDir | None = None) -> tuple[int, int] | None:
    """The half-open range of env seeds a checkpoint's training played, from the run's
    ``meta.json``, else the checkpoint's own record (``training_seeds``, the experiment's
    ``train.seed`` and ``env.num_envs``, or the agent's ``seed`` and the env's ``num_envs``);
    None when neither says."""
    candidates: list[Any] = [
        (run.meta if run is not None else {}).get("training_seeds"),
        meta.get("training_seeds"),
    ]
    experiment = meta.get("experiment")
    if isinstance(experiment, Mapping):
        seed = (experiment.get("train") or {}).get("seed", 0)
        num_envs = (experiment.get("env") or {}).get("num_envs", 1)
        candidates.append([seed, seed + num_envs] if _all_ints(seed, num_envs) else None)
    seed, num_envs = meta.get("seed"), (meta.get("env_kwargs") or {}).get("num_envs")
    if _all_ints(seed, num_envs):
        candidates.append([seed, seed + num_envs])
    for value in candidates:
        if isinstance(value, (list, tuple)) and len(value) == 2 and _all_ints(*value):
            return int(value[0]), int(value[1])
    return None


def _all_ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def evaluate(
    target: str | Path,
    *,
    episodes: int | None = None,
    seeds: str | None = None,
    baselines: Sequence[str] | None = None,
    device: str = "cpu",
    env_overrides: dict[str, Any] | None = None,
    agent_params: Mapping[str, Any] | None = None,
) -> list[EvalRow]:
    """Evaluate the checkpoint at ``target`` (a run dir or a file) and the named baselines.

    ``env_overrides`` replace env keyword arguments for this evaluation only (after the config's
    ``eval.env_kwargs``), e.g. ``{"integrator": "leapfrog"}`` to transfer a three-body agent
    trained on Hermite to the leapfrog. ``agent_params`` replace fields of the agent's saved
    ``Config`` (a mapping is merged into a mapping-valued field, see
    :meth:`Agent.config_with_overrides <rlsuite.agents.base.Agent.config_with_overrides>`),
    e.g. ``{"kwargs": {"batch_size": 64}}``; an unknown key or a wrong type is a
    :class:`ConfigError` before any env is made or episode played. The agent's row lists them
    in ``agent_params``."""
    checkpoint, run, notes = resolve_checkpoint(target)
    tensors, meta = load_checkpoint(checkpoint)
    if run is not None:
        run.check_checkpoint(checkpoint, meta)
    experiment = meta.get("experiment") or {}
    env_id = meta.get("env_id")
    if env_id not in ENVS and env_id not in gym.registry:
        raise ValueError(
            f"{checkpoint} was trained on {env_id!r}, which is neither an rlsuite id nor a "
            "registered gymnasium id here (import or install the package that registers it)"
        )
    eval_cfg = experiment.get("eval", {})
    env_kwargs = dict(experiment.get("env", {}).get("kwargs", meta.get("env_kwargs", {})))
    env_kwargs.update(eval_cfg.get("env_kwargs", {}))
    env_kwargs.update(env_overrides or {})
    for key in _MAKE_VEC_KEYS:  # Agent.save() stores the spec's kwargs, make_vec's among them
        env_kwargs.pop(key, None)
    seed_range = parse_seed_range(
        seeds or eval_cfg.get("seeds", "1000:1010"), where="--seeds" if seeds else "eval.seeds"
    )
    # an explicit --seeds range is played whole unless --episodes says otherwise
    default_episodes = len(seed_range) if seeds else eval_cfg.get("episodes", len(seed_range))
    n = episodes if episodes is not None else default_episodes
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"--episodes must be a positive int, got {n!r}")
    if n > len(seed_range):
        raise ConfigError(
            f"--episodes {n} needs at least {n} seeds, --seeds gives {len(seed_range)}"
        )
    eval_seeds = list(seed_range)[:n]
    trained = training_seeds(meta, run)
    used = set(range(*trained)) if trained is not None else set()
    env_seeds = tensors.get("env/env_seeds")  # the seeds the training env actually held
    if isinstance(env_seeds, torch.Tensor) and not env_seeds.is_floating_point():
        used |= set(env_seeds.flatten().tolist())
    overlap = sorted(set(eval_seeds) & used)
    if overlap:
        where = f"seeds {trained[0]}:{trained[1]}" if trained is not None else "its env seeds"
        raise ConfigError(
            f"evaluation seeds {overlap} were used in training ({where}); choose others with "
            "--seeds A:B"
        )
    if trained is None:
        notes.append(
            "training seeds unknown: neither the checkpoint nor its run records them, so the "
            "evaluation seeds could not be checked to be held out"
        )
    baselines = list(baselines if baselines is not None else eval_cfg.get("baselines", []))

    env_cfg = EnvConfig(id=env_id, kwargs=env_kwargs)

    def make(num_envs: int) -> BatchedVectorEnv:
        return make_env(env_cfg, num_envs=num_envs, device=device)

    agent_cls = get_agent_class(meta["agent"])
    agent_config = agent_cls.config_with_overrides(meta.get("config"), agent_params)
    if baselines:  # unknown names fail now, not after the agent's episodes
        baselines = check_baselines(env_id, baselines, make, eval_seeds[0])
    env = make(len(eval_seeds))
    held_out = getattr(env, "evaluation_note", None)  # what held-out seeds do not hold out
    if held_out:
        notes.append(held_out)
    agent = agent_cls(env, agent_config, seed=int(meta.get("seed", 0)))
    agent.restore(tensors)
    agent_results = run_agent_episodes(agent, env, eval_seeds)
    overridden = _overridden(config_to_dict(agent_config), agent_params or {})
    step = meta.get("step", meta.get("num_timesteps"))
    rows = [
        dataclasses.replace(
            _row(meta["agent"], agent_results, overridden),
            checkpoint=str(checkpoint),
            step=step if _all_ints(step) else None,
            training_seeds=list(trained) if trained is not None else None,
            notes=notes,
        )
    ]
    if baselines:
        module = _baselines_module(env_id)
        for name in baselines:
            if hasattr(module, "episode_results"):
                label = module.describe(name, make) if hasattr(module, "describe") else name
                rows.append(_row(label, module.episode_results(name, make, eval_seeds)))
            else:
                base_returns = module.episode_returns(name, make, eval_seeds)
                rows.append(_row(name, EpisodeResults(base_returns, agent_results.lengths)))
    return rows


class _BaselineAccepted(BaseException):
    """Raised by the env's ``reset`` in :func:`check_evaluation`: the baseline got that far."""


def check_evaluation(config: ExperimentConfig) -> None:
    """The config's ``eval`` section checked before training (a :class:`ConfigError` naming
    the key): ``eval.env_kwargs`` build the env, and every ``eval.baselines`` name is one the
    family accepts (each baseline is started on a one-env batch whose ``reset`` stops it, so
    no episode is played)."""
    env_id = config.env.id
    env_cfg = EnvConfig(id=env_id, kwargs={**config.env.kwargs, **config.eval.env_kwargs})

    def make(_: int = 1) -> BatchedVectorEnv:
        try:
            return make_env(env_cfg, num_envs=1, device="cpu")
        except (ConfigError, ValueError, TypeError) as err:
            raise ConfigError(f"eval.env_kwargs {config.eval.env_kwargs}: {err}") from None

    make().close()
    if not config.eval.baselines:
        return
    seed = parse_seed_range(config.eval.seeds, where="eval.seeds")[0]
    check_baselines(env_id, config.eval.baselines, make, seed, where="eval.baselines")


def check_baselines(
    env_id: str,
    names: Sequence[str],
    make: Callable[[int], BatchedVectorEnv],
    seed: int,
    *,
    where: str = "--baseline",
) -> list[str]:
    """The baseline names expanded (``expand_baselines``) and each checked by the family
    without playing an episode (it is started on ``make(1)``, whose ``reset`` stops it); a
    :class:`ConfigError` starting with ``where`` names an unknown one."""
    module = _baselines_module(env_id)
    if module is None:
        raise ConfigError(f"{where}: {env_id} has no baselines")
    names = list(names)
    try:
        if hasattr(module, "expand_baselines"):
            names = module.expand_baselines(names)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None

    def make_stopped(_: int = 1) -> BatchedVectorEnv:
        env = make(1)

        def reset(*args: Any, **kwargs: Any) -> Any:
            raise _BaselineAccepted

        env.reset = reset  # type: ignore[method-assign]
        return env

    run = getattr(module, "episode_results", None) or module.episode_returns
    for name in names:
        try:
            run(name, make_stopped, [seed])
        except _BaselineAccepted:
            continue
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(f"{where}: {err}") from None
    return names


def _overridden(
    config: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """The overridden fields as dotted keys with the values the agent's config holds."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and value and isinstance(config.get(key), Mapping):
            out.update(_overridden(config[key], value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = config.get(key)
    return out


def _baselines_module(env_id: str) -> Any:
    if env_id not in ENVS:  # a gymnasium id from elsewhere: no rlsuite baselines
        return None
    name = ENVS[env_id].baselines
    return None if name is None else importlib.import_module(name)


def checkpoint_env_id(target: str | Path) -> str:
    """The env id a run directory or checkpoint file was trained on."""
    checkpoint, _, _ = resolve_checkpoint(target)
    return str(load_checkpoint(checkpoint)[1].get("env_id"))


def has_plot(env_id: str) -> bool:
    """Whether the family of ``env_id`` draws an evaluation plot (``plot_evaluation``)."""
    module = _baselines_module(env_id) if env_id in ENVS else None
    return module is not None and hasattr(module, "plot_evaluation")


def write_plot(env_id: str, rows: Sequence[EvalRow], path: str | Path) -> Path | None:
    """The family's evaluation plot (its baselines module's ``plot_evaluation``) at ``path``;
    ``None`` when the family has none."""
    if not has_plot(env_id):
        return None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _baselines_module(env_id).plot_evaluation(list(rows), Path(path))
    return Path(path)


def _row(
    policy: str, results: EpisodeResults, agent_params: Mapping[str, Any] | None = None
) -> EvalRow:
    mean, low, high = confidence_interval(results.returns)
    metrics = {
        k: tuple(float(q) for q in np.percentile(v, [25, 50, 75]))
        for k, v in results.metrics.items()
    }
    return EvalRow(
        policy,
        len(results.returns),
        mean,
        low,
        high,
        float(np.mean(results.lengths)),
        metrics,
        dict(agent_params or {}),
    )


def print_table(rows: Sequence[EvalRow], title: str = "evaluation") -> None:
    """A rich table: mean episode return, its 95% CI, the mean reward per step and, per
    episode metric, "median [q25, q75]"; below it, the checkpoint evaluated and its step, the
    agent params a row overrode and any warning (a skipped checkpoint, unknown training
    seeds)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # every string is plain text: "[q25, q75]" or "[nan, nan]" must not be read as rich markup
    table = Table(title=escape(title), caption_justify="left")
    table.add_column("policy", no_wrap=True)
    metric_keys = sorted({k for r in rows for k in r.metrics})
    for column in ("episodes", "return", "95% CI", "reward/step"):
        table.add_column(column, justify="right", no_wrap=True)
    for key in metric_keys:
        table.add_column(escape(f"{key} median [q25, q75]"), justify="right", no_wrap=True)
    for r in rows:
        quartiles = [
            f"{m[1]:.3g} [{m[0]:.3g}, {m[2]:.3g}]" if (m := r.metrics.get(k)) else "-"
            for k in metric_keys
        ]
        cells = [
            r.policy,
            str(r.episodes),
            f"{r.mean_return:.5g}",
            f"[{r.ci95_low:.5g}, {r.ci95_high:.5g}]",
            f"{r.mean_return / r.mean_episode_length:.4g}",
            *quartiles,
        ]
        table.add_row(*map(escape, cells))
    caption = [
        f"{r.policy}: checkpoint {r.checkpoint}"
        + (f" (step {r.step})" if r.step is not None else " (step not recorded)")
        for r in rows
        if r.checkpoint is not None
    ]
    caption += [
        f"{r.policy} with --agent-param "
        + " ".join(f"{k}={v!r}" for k, v in r.agent_params.items())
        for r in rows
        if r.agent_params
    ]
    caption += [f"warning ({r.policy}): {note}" for r in rows for note in r.notes]
    if caption:
        table.caption = escape("\n".join(caption))
    Console(width=max(100 + 32 * len(metric_keys), Console().width)).print(table)


def write_json(rows: Sequence[EvalRow], path: str | Path) -> None:
    """The rows as a JSON list (metrics as ``{key: [q25, median, q75]}``, the overridden agent
    params as ``agent_params: {dotted key: value}``)."""
    Path(path).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
