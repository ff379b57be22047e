"""RLlib rollout throughput: the native batched env against RLlib's default per-env vectorisation.

What is measured: env steps per second of RLlib's ``SingleAgentEnvRunner`` (a local runner,
``num_env_runners=0``, built from a ``PPOConfig`` and sampling with its PPO RLModule, explore on)
for one rlsuite env id registered with :func:`rlsuite.integrations.rllib.register_rllib_envs`,
two ways, in the same process on the same env and env kwargs:

* ``native`` — ``gym_env_vectorize_mode="vector_entry_point"``: one native batched env of
  ``num_envs`` envs behind ``NumpyVectorEnv`` (tensor operations, no per-env loop);
* ``sync`` — RLlib's default ``"sync"``: ``num_envs`` single envs in gymnasium's
  ``SyncVectorEnv``.

Both runners get the same RLModule weights (the sync runner's are overwritten with the native
runner's), then each takes one warm-up ``sample`` (the reset and one batched step), then
``--repeats`` alternating measurements of ``env_runner.sample(num_timesteps=--steps)``
(rounded up by RLlib to whole batched steps; the steps actually sampled are counted). Reported
per env and size: the median steps per second of each side and their ratio (native / sync).
The times include RLlib's connectors and the module's forward pass, i.e. the whole rollout, not
the env alone (``rlsuite bench`` measures that). Episodes differ between the two sides (RLlib
seeds the native batch with ``seed * num_envs + i``, gymnasium's ``SyncVectorEnv`` with
``seed + i``), so the envs' per-step cost is comparable only on average.

Both sides use the RLModule ``rllib.PPO`` would (:func:`~rlsuite.integrations.rllib.
ppo_module_spec`): the masked module for masked envs such as ``rlsuite/MallocGame-v0`` (whose
observation then carries the mask, also in ``sync`` mode), independent Bernoullis for
``MultiBinary`` actions (the coRMAB envs). An env whose first sampled step fails is reported
under ``skipped`` with the reason.

How to run (the Ray extra, ``pip install 'rlsuite[ray]'``; the defaults take about 9 min on 2
cores, nearly all of it in the ``sync`` side, at 20-45 steps per second)::

    python benchmarks/rllib_throughput.py --markdown
    python benchmarks/rllib_throughput.py --envs rlsuite/ThreeBody-v0 --sizes 64 --steps 512

``rlsuite/ThreeBody-v0`` (every action legal) runs too, but its cost per step swings widely
with the actions played (a batch waits for its slowest member), so it is not a default.

Prints one JSON document (``--markdown`` adds a table on stderr). Machines are shared and
noisy: compare figures taken in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import ray
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from rlsuite.integrations.rllib import (
    VECTOR_ENTRY_POINT,
    make_rllib_env,
    ppo_module_spec,
    register_rllib_envs,
)

DEFAULT_ENVS = (
    "rlsuite/SOR-ShiftedLaplacian-v0",
    "rlsuite/SOR-ShiftedLaplacianContinuous-v0",
    "rlsuite/MallocGame-v0",
)
#: env kwargs per id (both sides get the same); ids not listed run with their defaults
ENV_KWARGS: dict[str, dict[str, Any]] = {
    "rlsuite/CoRMAB-Budget-v0": {"infeasible": "project"},
}
MODES = {"native": VECTOR_ENTRY_POINT, "sync": "sync"}


def make_runner(env_id: str, mode: str, num_envs: int, seed: int) -> SingleAgentEnvRunner:
    """A local ``SingleAgentEnvRunner`` of a default ``PPOConfig`` for ``env_id``, with the
    RLModule ``rllib.PPO`` would use."""
    env_config = dict(ENV_KWARGS.get(env_id, {}))
    probe = make_rllib_env(env_id, {**env_config, "num_envs": 1})
    spec = ppo_module_spec(probe.single_action_space, probe.masked)
    probe.close()
    config = (
        PPOConfig()
        .environment(env_id, env_config=env_config)
        .env_runners(
            num_env_runners=0, num_envs_per_env_runner=num_envs, gym_env_vectorize_mode=mode
        )
        .debugging(seed=seed)
    )
    if spec is not None:
        config = config.rl_module(rl_module_spec=spec)
    return SingleAgentEnvRunner(config=config)


def sample_rate(runner: SingleAgentEnvRunner, steps: int) -> tuple[int, float]:
    """Env steps sampled by ``runner.sample(num_timesteps=steps)`` and the seconds it took."""
    start = time.perf_counter()
    episodes = runner.sample(num_timesteps=steps)
    seconds = time.perf_counter() - start
    return sum(len(episode) for episode in episodes), seconds


def root_cause(err: BaseException) -> str:
    """The innermost cause of ``err`` (RLlib re-raises env failures as a bare RuntimeError)."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= 300 else text[:297] + "..."


def measure(env_id: str, num_envs: int, steps: int, repeats: int, seed: int) -> dict[str, Any]:
    """Native against sync rollout throughput for one env and batch size (see the docstring)."""
    runners = {name: make_runner(env_id, mode, num_envs, seed) for name, mode in MODES.items()}
    try:
        if runners["native"].module is None:
            space = runners["native"].env.single_action_space
            raise ValueError(f"RLlib's PPO built no RLModule for the action space {space}")
        runners["sync"].module.set_state(runners["native"].module.get_state())
        for runner in runners.values():  # warm-up: the reset and one batched step
            runner.sample(num_timesteps=num_envs)
        rates: dict[str, list[float]] = {name: [] for name in runners}
        sampled: dict[str, list[int]] = {name: [] for name in runners}
        for _ in range(repeats):
            for name, runner in runners.items():
                n, seconds = sample_rate(runner, steps)
                sampled[name].append(n)
                rates[name].append(n / seconds)
    finally:
        for runner in runners.values():
            runner.stop()
    native, sync = statistics.median(rates["native"]), statistics.median(rates["sync"])
    return {
        "env_id": env_id,
        "num_envs": num_envs,
        "steps_per_sample": sampled["native"][0],
        "repeats": repeats,
        "native_steps_per_s": native,
        "sync_steps_per_s": sync,
        "speedup": native / sync,
        "native_runs_steps_per_s": rates["native"],
        "sync_runs_steps_per_s": rates["sync"],
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| env | envs | steps/sample | native steps/s | sync steps/s | native / sync |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['env_id']} | {r['num_envs']} | {r['steps_per_sample']} | "
            f"{r['native_steps_per_s']:.0f} | {r['sync_steps_per_s']:.0f} | {r['speedup']:.1f}× |"
        )
    for s in report["skipped"]:
        reason = s["reason"] if len(s["reason"]) <= 90 else s["reason"][:87] + "..."
        lines.append(f"| {s['env_id']} | {s['num_envs']} | skipped: {reason} | | | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default=",".join(DEFAULT_ENVS), help="comma-separated env ids")
    parser.add_argument("--sizes", default="64,512", help="envs per runner, comma-separated")
    parser.add_argument("--steps", type=int, default=1024, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_rllib_envs()
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict[str, Any] = {
        "runner": "SingleAgentEnvRunner (local, num_env_runners=0), PPOConfig() RLModule",
        "native": "gym_env_vectorize_mode='vector_entry_point' (NumpyVectorEnv)",
        "baseline": "gym_env_vectorize_mode='sync' (gymnasium SyncVectorEnv)",
        "threads": 1,
        "ray": ray.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "results": [],
        "skipped": [],
    }
    start = time.perf_counter()
    try:
        for env_id in args.envs.split(","):
            for num_envs in sizes:
                try:
                    row = measure(env_id, num_envs, args.steps, args.repeats, args.seed)
                except Exception as err:
                    reason = root_cause(err)
                    report["skipped"].append(
                        {"env_id": env_id, "num_envs": num_envs, "reason": reason}
                    )
                    continue
                report["results"].append(row)
    finally:
        ray.shutdown()
    report["seconds"] = time.perf_counter() - start
    print(json.dumps(report, indent=2))
    if args.markdown:
        print(markdown(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
