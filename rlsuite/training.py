"""The training entry point behind ``rlsuite train``: config in, run directory out.

A run directory (see :class:`rlsuite.runs.RunDir`) receives the resolved config, metrics every
``train.log_every`` env steps and a checkpoint every ``train.checkpoint_every`` env steps. A
checkpoint holds the agent's state *and* the environment's (its seeds, episode numbers and
position in the sequence), so ``rlsuite train --resume RUN_DIR`` continues a killed run where
its last checkpoint left it; for rlsuite's own agents the resumed run ends bit-identical to an
uninterrupted one (``tests/core/test_training.py``).

An agent that runs on Ray itself (``Agent.uses_ray``: ``rllib.*``) is connected to the cluster
at ``address`` (``rlsuite train --address``, else ``RAY_ADDRESS``) before it is built
(:func:`connect_ray`); without either it starts its own embedded Ray instance. Ray is imported
only then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from rlsuite import __version__
from rlsuite.agents.base import Agent
from rlsuite.config import ConfigError, EnvConfig, ExperimentConfig, build_dataclass, config_to_dict
from rlsuite.registry import ENVS, get_agent_class
from rlsuite.runs import RunDir, load_checkpoint
from rlsuite.threads import configure_threads
from rlsuite.vector import BatchedVectorEnv

ENV_PREFIX = "env/"


def _native_batched(env_id: str) -> bool:
    """Whether ``env_id``'s vector entry point is an rlsuite :class:`BatchedVectorEnv` class."""
    from gymnasium.envs.registration import load_env_creator

    creator = gym.spec(env_id).vector_entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    return isinstance(creator, type) and issubclass(creator, BatchedVectorEnv)


def make_env(
    env: EnvConfig, *, num_envs: int | None = None, device: str = "cpu"
) -> BatchedVectorEnv:
    """The batched env a config describes (``num_envs`` overrides the config's): the native one
    for rlsuite's ids (and plugins' ids with a native batched env), else any registered
    gymnasium id as a :class:`~rlsuite.single_env_batch.SingleEnvBatch` (slower, same API)."""
    count = num_envs or env.num_envs
    if env.id not in ENVS:
        if env.id not in gym.registry:
            raise ConfigError(
                f"env.id: unknown environment {env.id!r}: neither rlsuite's ({', '.join(sorted(ENVS))}) "
                "nor a registered gymnasium id (import the package that registers it, or declare "
                "it as an 'rlsuite.envs' plugin)"
            )
        from rlsuite.single_env_batch import SingleEnvBatch

        if _native_batched(env.id):  # registered with an rlsuite batched env
            try:
                vec = gym.make_vec(
                    env.id, num_envs=count, vectorization_mode="vector_entry_point",
                    device=device, **env.kwargs,
                )  # fmt: skip
            except TypeError as err:
                raise ConfigError(f"env.kwargs for {env.id}: {err}") from err
            if isinstance(vec, BatchedVectorEnv):
                return vec
        try:
            return SingleEnvBatch(env.id, count, device, **env.kwargs)
        except TypeError as err:
            raise ConfigError(f"env.kwargs for {env.id}: {err}") from err
    try:
        vec = gym.make_vec(
            env.id,
            num_envs=count,
            vectorization_mode="vector_entry_point",
            device=device,
            **env.kwargs,
        )
    except TypeError as err:
        raise ConfigError(f"env.kwargs for {env.id}: {err}") from err
    if not isinstance(vec, BatchedVectorEnv):
        raise ConfigError(f"{env.id}'s vector entry point is not an rlsuite BatchedVectorEnv")
    return vec


def env_state_tensors(env: BatchedVectorEnv) -> dict[str, torch.Tensor]:
    """The env's state under the ``env/`` prefix, stored beside the agent's in a checkpoint."""
    return {ENV_PREFIX + k: v for k, v in env.state_dict().items()}


def connect_ray(address: str) -> None:
    """Connect this process to the Ray cluster at ``address`` (``ray.init(address=...)``), so
    that an agent built afterwards runs there; a Ray instance already initialised in this
    process (a Ray Tune trial's) is used as is."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"--address {address}: connecting to a Ray cluster needs Ray: pip install 'rlsuite[ray]'"
        ) from err
    if not ray.is_initialized():
        ray.init(address=address)


def build(
    config: ExperimentConfig, *, address: str | None = None
) -> tuple[BatchedVectorEnv, Agent]:
    """Env and agent for a config (fails before any work on a bad agent name or param).

    ``address``: the Ray cluster for an agent that uses Ray (``Agent.uses_ray``); ``None``
    means ``$RAY_ADDRESS`` if set. An explicit ``address`` with an agent that does not use Ray
    is a :class:`ConfigError` (``RAY_ADDRESS`` is then ignored)."""
    configure_threads(config.train.threads)
    agent_cls = get_agent_class(config.agent.name)
    params = build_dataclass(agent_cls.Config, config.agent.params, where="agent.params")
    uses_ray = bool(getattr(agent_cls, "uses_ray", False))
    if address is not None and not uses_ray:
        raise ConfigError(
            f"--address {address}: agent {config.agent.name!r} does not use Ray, so it has no "
            "cluster to run on; leave out --address (it is for Ray agents such as rllib.PPO)"
        )
    env = make_env(config.env, device=config.train.device)
    try:
        agent_cls.check_env(env)
    except (ValueError, TypeError) as err:
        env.close()
        raise ConfigError(
            f"agent.name {config.agent.name!r} with env.id {config.env.id}: {err}"
        ) from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    if uses_ray and address:
        connect_ray(address)
    return env, agent_cls(env, params, seed=config.train.seed)


def train(
    config: ExperimentConfig,
    run_dir: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    on_checkpoint: Callable[[RunDir, int], None] | None = None,
    address: str | None = None,
    take_over_lock: bool = False,
) -> RunDir:
    """Train the agent a config names and return the run directory.

    With ``resume=RUN_DIR`` the config is the run's own (``config`` is ignored) and training
    continues from the run's latest checkpoint. ``on_checkpoint(run, step)``, if given, is
    called after each checkpoint is written (``rlsuite sweep`` reports progress to Ray Tune
    with it). ``address`` is the Ray cluster of an agent that uses Ray (see :func:`build`).

    Everything is checked before the run directory exists (the config, the eval section, the
    agent/env pairing, the run directory's path); the run directory is locked while training
    writes it, so ``resume`` of a run that is still going is refused (``take_over_lock``: a
    scheduler that knows the previous holder is gone takes its lock). Ctrl-C raises
    :class:`TrainingInterrupted` (the run path and latest checkpoint step)."""
    if resume is not None:
        run = RunDir.open(resume)
        run.acquire_lock(take_over=take_over_lock)  # a run still going is refused here
        try:
            config = build_dataclass(ExperimentConfig, run.config)
            env, agent = build(config, address=address)
            checkpoint = run.latest_checkpoint()  # checkpoints of which none loads: an error
            step = 0
            if checkpoint is not None:
                tensors, checkpoint_meta = load_checkpoint(checkpoint)
                run.check_checkpoint(checkpoint, checkpoint_meta)
                agent.restore(tensors)
                env.load_state_dict(
                    {
                        k[len(ENV_PREFIX) :]: v
                        for k, v in tensors.items()
                        if k.startswith(ENV_PREFIX)
                    }
                )
                step = int(checkpoint_meta.get("step", agent.num_timesteps))
            run.truncate_metrics(step)  # rows after the checkpoint are logged again
            _learn(agent, env, run, config, progress, on_checkpoint)
        finally:
            run.close()
        return run
    from rlsuite.evaluation import check_evaluation  # evaluation imports this module

    check_evaluation(config)  # eval.baselines and eval.env_kwargs fail now, not after training
    path = Path(run_dir) if run_dir else None
    if path is not None:
        RunDir.check_new(path)  # before any work: a file in the way, a used directory
    env, agent = build(config, address=address)  # validates everything before the run exists
    if path is None:
        name = config.name or config.env.id.split("/")[-1].lower()
        path = Path("runs") / f"{name}-{config.agent.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    meta = {
        "rlsuite_version": __version__,
        "env_id": config.env.id,
        "agent": config.agent.name,
        "training_seeds": [config.train.seed, config.train.seed + config.env.num_envs],
    }
    run = RunDir.create(path, config_to_dict(config), meta)
    try:
        _learn(agent, env, run, config, progress, on_checkpoint)
    finally:
        run.close()
    return run


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`: the run directory and its latest checkpoint's step, for
    the one-line message ``rlsuite train`` prints (``--resume`` continues from there)."""

    def __init__(self, run_path: Path, step: int, checkpoint_step: int | None) -> None:
        super().__init__(f"training of {run_path} interrupted at step {step}")
        self.run_path, self.step, self.checkpoint_step = run_path, step, checkpoint_step


def _learn(
    agent: Agent,
    env: BatchedVectorEnv,
    run: RunDir,
    config: ExperimentConfig,
    progress: bool,
    on_checkpoint: Callable[[RunDir, int], None] | None = None,
) -> None:
    train_cfg = config.train
    remaining = train_cfg.total_steps - agent.num_timesteps
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}  # per key: an agent may report a metric on some steps only
    last_step = agent.num_timesteps
    display = _Progress(train_cfg.total_steps, agent.num_timesteps, enabled=progress)

    def save(step: int) -> None:
        meta = {**agent.metadata(), "experiment": config_to_dict(config)}
        run.save_checkpoint(step, {**agent.checkpoint_tensors(), **env_state_tensors(env)}, meta)
        if on_checkpoint is not None:
            on_checkpoint(run, step)

    def flush(step: int) -> None:
        if sums:
            means = {k: v / counts[k] for k, v in sums.items()}
            run.log_metrics(step, means)
            display.update(step, means)
            sums.clear()
            counts.clear()

    def callback(_: Agent, metrics: Mapping[str, float]) -> bool:
        # Rows and checkpoints fall on multiples of log_every / checkpoint_every, and a checkpoint
        # flushes the running means first, so a resumed run logs exactly what an uninterrupted
        # one does.
        nonlocal last_step
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
        step = agent.num_timesteps
        if step // train_cfg.log_every > last_step // train_cfg.log_every:
            flush(step)
        if step // train_cfg.checkpoint_every > last_step // train_cfg.checkpoint_every:
            flush(step)
            save(step)
        last_step = step
        return True

    try:
        with display:
            if remaining > 0:
                agent.learn(remaining, callback=callback)
            flush(agent.num_timesteps)
            save(agent.num_timesteps)
    except KeyboardInterrupt:
        run.close()
        checkpoint, _ = run.find_checkpoint()
        saved = None
        if checkpoint is not None:
            saved = load_checkpoint(checkpoint)[1].get("step")
        raise TrainingInterrupted(run.path, agent.num_timesteps, saved) from None
    run.close()


class _Progress:
    """A rich progress bar with the latest metrics, or nothing when disabled."""

    def __init__(self, total: int, start: int, *, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
            )
            self.task = self.bar.add_task("train", total=total, completed=start, metrics="")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.stop()

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.enabled:
            text = "  ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:4])
            self.bar.update(self.task, completed=step, metrics=text)
