"""The ``rlsuite`` command line: ``list``, ``train``, ``eval``, ``sweep``, ``bench``.

::

    rlsuite list
    rlsuite train configs/sor/tsallis_inf.yaml --set train.total_steps=2000 --seed 1
    rlsuite train configs/sor/rllib_ppo.yaml --address ray://head:10001
    rlsuite eval runs/<run> --baseline best_fixed --baseline instance_optimal
    rlsuite sweep configs/sor/tsallis_inf.yaml --grid env.kwargs.n=8,10 --seeds 3 --out sweeps/n
    rlsuite bench rlsuite/SOR-ShiftedLaplacian-v0 --num-envs 1,64,256

Errors in configs, files and arguments are printed as one line naming what was wrong (exit
status 2); ``--traceback`` shows the full Python traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rlsuite.config import ConfigError, apply_overrides


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--num-envs takes comma-separated ints like 1,64,1024, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--num-envs needs positive ints, got {text!r}")
    return sizes


def _parse_action(text: str) -> Any:
    """``--action``: one action as YAML (``3``, ``[0, 1, 1]``, ``[1.2]``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise argparse.ArgumentTypeError(
            f"--action takes one action as YAML, e.g. 3 or [0, 1, 1]; {text!r} is not valid "
            f"YAML ({problem})"
        ) from None


# Flags whose value may start with "-" ("--seeds -5:3", "--set train.seed=-1"): argparse would
# take such a value for an option and answer "expected one argument".
_VALUE_FLAGS = frozenset(
    {"--seeds", "--set", "--env-kwarg", "--agent-param", "--action", "--min-seconds", "--seed"}
)


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """``["--seeds", "-5:3"]`` -> ``["--seeds=-5:3"]`` for the flags in ``_VALUE_FLAGS``."""
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item in _VALUE_FLAGS and i + 1 < len(items) and items[i + 1].startswith("-"):
            if items[i + 1] not in ("-h", "--help") and not items[i + 1].startswith("--"):
                out.append(f"{item}={items[i + 1]}")
                i += 2
                continue
        out.append(item)
        i += 1
    return out


def _check_output_file(flag: str, path: str | None, *, create_parent: bool = False) -> None:
    """An output path checked before any work: not a directory, its parent a directory that
    exists (or is created, with ``create_parent``)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file name, e.g. {target}/out")
    parent = target.parent
    for ancestor in [parent, *parent.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            raise ConfigError(f"{flag} {path}: {ancestor} is a file, not a directory")
    if not parent.exists():
        if not create_parent:
            raise ConfigError(f"{flag} {path}: the directory {parent} does not exist")
        return
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{flag} {path}: the directory {parent} is not writable")


def _agent_params(items: Sequence[str]) -> dict[str, Any]:
    """``--agent-param KEY=VALUE`` items as a nested mapping (``kwargs.batch_size=64`` ->
    ``{"kwargs": {"batch_size": 64}}``); errors name the flag."""
    try:
        return apply_overrides({}, items)
    except ConfigError as err:
        raise ConfigError(f"--agent-param {err}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlsuite", description="rlsuite environments and agents")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="every environment id and agent, one line each")

    train = sub.add_parser("train", help="train an agent from a YAML config")
    train.add_argument(
        "config", nargs="?", help="YAML experiment config (not needed with --resume)"
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set agent.params.num_bins=20",
    )
    train.add_argument("--seed", type=int, help="train.seed")
    train.add_argument("--device", help="train.device: cpu, cuda, cuda:1, ...")
    train.add_argument("--threads", type=int, help="train.threads: torch's CPU threads (default 1)")
    train.add_argument(
        "--run-dir", help="where to write the run (default runs/<name>-<agent>-<time>)"
    )
    train.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--address",
        help="Ray cluster for an agent that runs on Ray itself, e.g. rllib.PPO (default: "
        "$RAY_ADDRESS, else the agent's own embedded Ray instance); an error for other agents",
    )

    ev = sub.add_parser("eval", help="evaluate a run or checkpoint on held-out seeds")
    ev.add_argument("target", help="run directory or checkpoint file")
    ev.add_argument("--episodes", type=int, help="number of episodes (one per seed)")
    ev.add_argument(
        "--seeds",
        help="held-out seed range A:B, played whole unless --episodes is given (default: the "
        "config's eval.seeds and eval.episodes)",
    )
    ev.add_argument(
        "--baseline",
        dest="baselines",
        action="append",
        help="a baseline to run on the same seeds (repeatable); given, the list replaces the "
        "config's eval.baselines (repeat it to keep them)",
    )
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--threads", type=int, help="torch's CPU threads (default 1; rlsuite.threads)")
    ev.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    ev.add_argument(
        "--env-kwarg",
        dest="env_kwargs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an env keyword argument for this evaluation (repeatable; YAML value), "
        "e.g. integrator=leapfrog to transfer a three-body agent",
    )
    ev.add_argument(
        "--agent-param",
        dest="agent_params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the agent's Config for this evaluation (repeatable; YAML "
        "value, checked like agent.params before any episode), e.g. learning_rate_scale=2 or "
        "kwargs.batch_size=64 for one SB3 constructor argument",
    )
    ev.add_argument(
        "--plot",
        help="where to write the family's evaluation plot (PNG; default: RUN_DIR/eval/evaluation.png, "
        "evaluation-KEY=VALUE.png with --env-kwarg; "
        "for families that draw one, e.g. three-body energy error against cost)",
    )

    sweep = sub.add_parser(
        "sweep",
        help="a grid of overrides x seeds as Ray Tune trials (needs rlsuite[ray])",
        description="Train and evaluate every grid point with seeds 0..N-1 (train.seed) as Ray "
        "Tune trials of the ordinary training entry point, into run directories "
        "OUT/<grid point>/seed<k>; failed trials are retried from their last checkpoint, and "
        "the table of mean eval return ± 95% CI over seeds is written to OUT/sweep.csv and "
        "OUT/sweep.json.",
    )
    sweep.add_argument("config", nargs="?", help="YAML experiment config (optional with --resume)")
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a config key and its values (YAML scalars), e.g. agent.params.lr=1e-3,3e-4; "
        "repeat for more keys (the grid is their product)",
    )
    sweep.add_argument(
        "--seeds", type=int, metavar="N", help="training seeds 0..N-1 per grid point (default 1)"
    )
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a base config value for every trial, e.g. --set train.total_steps=2000",
    )
    sweep.add_argument("--out", help="the sweep's directory (default sweeps/<config name>-<time>)")
    sweep.add_argument(
        "--address",
        help="Ray cluster to run on (default: $RAY_ADDRESS, else an embedded local instance); "
        "OUT must then be shared storage that every node sees at the same path",
    )
    sweep.add_argument(
        "--num-cpus", type=int, help="CPUs of the embedded local Ray instance (default: all)"
    )
    sweep.add_argument("--max-concurrent", type=int, metavar="K", help="at most K trials at a time")
    sweep.add_argument(
        "--max-failures",
        type=int,
        default=2,
        metavar="F",
        help="retries per failed trial, each from its last checkpoint (default 2)",
    )
    sweep.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted sweep in --out (finished trials are not rerun)",
    )

    bench = sub.add_parser("bench", help="native batched env vs SyncVectorEnv, steps/s ratio")
    bench.add_argument("env_id")
    bench.add_argument("--num-envs", type=_parse_sizes, default=[1, 64, 1024])
    bench.add_argument("--device", default="cpu")
    bench.add_argument(
        "--threads", type=int, help="torch's CPU threads (default 1; rlsuite.threads)"
    )
    bench.add_argument("--min-seconds", type=float, default=2.0, help="time per measurement")
    bench.add_argument(
        "--action", type=_parse_action, help="one fixed action for every env (default: random)"
    )
    bench.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="env kwargs, e.g. --set n=16",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_join_dash_values(sys.argv[1:] if argv is None else argv))
    try:
        return _run(args)
    except (ConfigError, ValueError, TypeError, ImportError, OSError) as err:
        if args.traceback:
            raise
        print(f"rlsuite {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        if args.traceback:
            raise
        from rlsuite.training import TrainingInterrupted

        if isinstance(interrupt, TrainingInterrupted):
            saved = (
                f"its latest checkpoint is step {interrupt.checkpoint_step}"
                if interrupt.checkpoint_step is not None
                else "it has no checkpoint yet"
            )
            print(
                f"rlsuite train: interrupted at step {interrupt.step}; {saved}; continue with: "
                f"rlsuite train --resume {shlex.quote(str(interrupt.run_path))}",
                file=sys.stderr,
            )
        else:
            print(f"rlsuite {args.command}: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "list":
        from rlsuite.registry import AGENTS, ENVS, extra_installed

        def needs(extra: str | None) -> str:  # only where the extra is not installed
            return f" [needs rlsuite[{extra}]]" if extra and not extra_installed(extra) else ""

        print(
            "environments (model: implements the search model of rlsuite.model; "
            "then the pip extra it needs, - for none):"
        )
        for entry in ENVS.values():
            model = "model" if entry.has_model else ""
            extra = entry.extra or "-"
            print(f"  {entry.id:45s} {model:5s} {extra:6s} {entry.summary}{needs(entry.extra)}")
        print("agents:")
        for agent in AGENTS.values():
            print(f"  {agent.name:45s} {agent.summary}{needs(agent.extra)}")
        return 0

    if args.command == "train":
        from rlsuite.config import load_config
        from rlsuite.training import train

        if args.resume:
            if (
                args.config
                or args.overrides
                or args.seed is not None
                or args.device
                or args.threads is not None
            ):
                raise ConfigError(
                    "--resume continues a run with its own config; drop CONFIG, --set, --seed, "
                    "--device and --threads"
                )
            run = train(
                None,  # type: ignore[arg-type]
                resume=args.resume,
                progress=not args.no_progress,
                address=args.address,
            )
        else:
            if not args.config:
                raise ConfigError("rlsuite train needs a CONFIG.yaml (or --resume RUN_DIR)")
            overrides = list(args.overrides)
            if args.seed is not None:
                overrides.append(f"train.seed={args.seed}")
            if args.device:
                overrides.append(f"train.device={args.device}")
            if args.threads is not None:
                overrides.append(f"train.threads={args.threads}")
            config = load_config(args.config, overrides)
            run = train(config, args.run_dir, progress=not args.no_progress, address=args.address)
        print(f"run directory: {run.path}")
        return 0

    if args.command == "eval":
        from rlsuite.evaluation import (
            checkpoint_env_id,
            evaluate,
            has_plot,
            print_table,
            write_json,
            write_plot,
        )
        from rlsuite.threads import configure_threads
        from rlsuite.vector import resolve_device

        resolve_device(args.device)  # every argument checked before any work
        _check_output_file("--json", args.json_out)
        _check_output_file("--plot", args.plot, create_parent=True)
        configure_threads(args.threads)
        env_id = checkpoint_env_id(args.target)
        if args.plot and not has_plot(env_id):
            raise ConfigError(f"{env_id} has no evaluation plot; leave out --plot")
        rows = evaluate(
            args.target,
            episodes=args.episodes,
            seeds=args.seeds,
            baselines=args.baselines,
            device=args.device,
            env_overrides=apply_overrides({}, args.env_kwargs),
            agent_params=_agent_params(args.agent_params),
        )
        for note in (note for row in rows for note in row.notes):
            print(f"rlsuite eval: warning: {note}", file=sys.stderr)
        print_table(rows, title=f"evaluation of {args.target}")
        if args.json_out:
            write_json(rows, args.json_out)
        target = Path(args.target)
        # evaluations under other env kwargs get their own plot (e.g. integrator=leapfrog)
        tag = "".join(
            "-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", item) for item in sorted(args.env_kwargs)
        )
        default = (
            target / "eval" / f"evaluation{tag}.png"
            if target.is_dir()
            else target.with_name(f"{target.stem}{tag}.png")
        )
        written = write_plot(env_id, rows, args.plot or default)
        if written is not None:
            print(f"plot written to {written}")
        return 0

    if args.command == "sweep":
        from rlsuite.sweep import print_summary, require_ray, run_sweep

        require_ray()
        outcome = run_sweep(
            args.config,
            args.grid,
            args.seeds,
            out=args.out,
            overrides=args.overrides,
            address=args.address,
            num_cpus=args.num_cpus,
            max_concurrent=args.max_concurrent,
            max_failures=args.max_failures,
            resume=args.resume,
        )
        print_summary(outcome.rows, outcome.spec)
        print(f"written: {outcome.csv_path} and {outcome.json_path}")
        if outcome.unfinished:
            print(
                f"rlsuite sweep: {outcome.unfinished} of {outcome.trials} trials did not finish; "
                f"continue with: rlsuite sweep --out {outcome.csv_path.parent} --resume",
                file=sys.stderr,
            )
            return 1
        return 0

    if args.command == "bench":
        from rlsuite.bench import benchmark_env
        from rlsuite.threads import configure_threads

        configure_threads(args.threads)
        kwargs = apply_overrides({}, args.overrides)
        result = benchmark_env(
            args.env_id,
            args.num_envs,
            device=args.device,
            min_seconds=args.min_seconds,
            action=args.action,
            env_kwargs=kwargs,
        )
        print(json.dumps(result, indent=2))
        return 0
    raise AssertionError(args.command)  # pragma: no cover - argparse restricts commands


if __name__ == "__main__":
    sys.exit(main())
