"""``rlsuite sweep``: a grid of config overrides times training seeds, as Ray Tune trials.

::

    rlsuite sweep configs/sor/tsallis_inf.yaml --grid agent.params.eta=0.5,1.0 --seeds 5

Every trial is the ordinary training entry point (:func:`rlsuite.training.train`, so any agent
works, not only the RLlib ones): the trial applies its grid point's overrides and
``train.seed=<k>`` to the config, trains into a normal run directory
``OUT/<grid-point-slug>/seed<k>``, evaluates it as ``rlsuite eval`` would (the config's
``eval`` section; the rows are written to ``RUN_DIR/eval/results.json``) and reports the
agent's mean evaluation return to Tune as ``eval_return``.

**Retries.** A trial that raises is retried by Tune up to ``max_failures`` times. A retried
trial finds its run directory and continues it with ``train(resume=...)`` from the latest
checkpoint, so the work before the crash is kept. Every attempt appends a line
``{"trial", "attempt", "start_step", "time", "host", "node"}`` to ``OUT/trials.jsonl``
(``node`` is the Ray node id the attempt ran on).

**Resuming a sweep.** The sweep's spec (the resolved base config, the grid and the number of
seeds) is saved as ``OUT/sweep.yaml`` and Tune's experiment state under ``OUT/tune``. After a
Ctrl-C or a crash, ``rlsuite sweep --out OUT --resume`` restores the experiment
(``Tuner.restore``): finished trials are not rerun, unfinished and errored ones continue from
their run directories.

**Summary.** Per grid point, the mean and Student-t 95% CI over seeds of the evaluation return
and of each episode metric (the per-seed median), printed and written to ``OUT/sweep.csv`` and
``OUT/sweep.json``.

On a Ray cluster (``--address`` or ``RAY_ADDRESS``), ``OUT`` must be a directory every node
sees at the same path (shared storage) and rlsuite must be installed on every node.

Ray is imported only inside the functions that need it, so this module imports without the
``[ray]`` extra.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import importlib.util
import itertools
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlsuite.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    build_dataclass,
    config_to_dict,
    load_config,
    parse_seed_range,
    yaml_dump,
    yaml_load,
)

__all__ = [
    "FAULT_SUFFIX",
    "SweepRow",
    "SweepSpec",
    "expand_grid",
    "parse_grid",
    "point_slug",
    "prepare_sweep",
    "require_ray",
    "run_sweep",
    "summarize",
]

SPEC_FILE = "sweep.yaml"
TUNE_DIR = "tune"
TRIAL_LOG = "trials.jsonl"
RESULT_FILE = "sweep_result.json"
FAULT_SUFFIX = ".crash-after-checkpoint"
"""Fault injection for tests: a file ``OUT/<slug>/seed<k>.crash-after-checkpoint`` makes that
trial raise after the first checkpoint of an attempt; the file is removed first if it holds
``once`` (so the retry succeeds) and kept if it holds ``always``."""

_RAY_MESSAGE = "rlsuite sweep runs its trials on Ray Tune: pip install 'rlsuite[ray]'"


def require_ray() -> None:
    """Raise ModuleNotFoundError naming the ``[ray]`` extra unless Ray Tune is importable."""
    try:
        found = importlib.util.find_spec("ray") is not None
        found = found and importlib.util.find_spec("ray.tune") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ModuleNotFoundError(_RAY_MESSAGE, name="ray")


# -- the grid ------------------------------------------------------------------------------------

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*$")


def _split_values(text: str) -> list[str]:
    """``text`` split on commas outside brackets, braces and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """``["agent.params.eta=0.5,1", "env.kwargs.n=8,16"]`` -> ``[(key, [values]), ...]``.

    Values are split on commas (outside ``[...]``, ``{...}`` and quotes) and each is parsed as
    YAML, as ``--set`` values are (``1e-3`` is a float, ``[1, 2]`` a list, ``low`` a string).
    """
    grid: list[tuple[str, list[Any]]] = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"--grid {item!r}: expected 'dotted.key=v1,v2,...'")
        key, text = item.split("=", 1)
        key = key.strip()
        if not _KEY_RE.match(key):
            raise ConfigError(
                f"--grid {item!r}: {key!r} is not a dotted key like 'agent.params.lr'"
            )
        if key == "train.seed":
            raise ConfigError("--grid train.seed: training seeds are set by --seeds N")
        if key in seen:
            raise ConfigError(f"--grid {key}: given twice; list all its values in one --grid")
        seen.add(key)
        values: list[Any] = []
        for part in _split_values(text):
            if not part.strip():
                raise ConfigError(f"--grid {item!r}: empty value; expected '{key}=v1,v2,...'")
            try:
                values.append(yaml_load(part))
            except Exception as err:  # yaml.YAMLError
                raise ConfigError(
                    f"--grid {key}: value {part!r} is not valid YAML ({err})"
                ) from None
        if len(values) != len({json.dumps(v, sort_keys=True, default=str) for v in values}):
            raise ConfigError(f"--grid {key}: repeated values in {text!r}")
        grid.append((key, values))
    return grid


def expand_grid(grid: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every grid point (the Cartesian product; the first key varies slowest); no grid gives one
    empty point."""
    keys = [key for key, _ in grid]
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in grid))
    ]


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def point_slug(point: Mapping[str, Any]) -> str:
    """A directory name for a grid point: ``agent.params.eta=0.5__env.kwargs.n=8`` (``base``
    for the empty point); characters other than letters, digits and ``._=-`` become ``_``."""
    if not point:
        return "base"
    text = "__".join(f"{key}={_value_text(value)}" for key, value in point.items())
    slug = re.sub(r"[^A-Za-z0-9._=-]", "_", text)
    if len(slug) > 120:
        import hashlib

        slug = slug[:100] + "-" + hashlib.sha1(text.encode()).hexdigest()[:12]
    return slug


def _point_overrides(point: Mapping[str, Any]) -> list[str]:
    # yaml_dump's text reads back to the same value through apply_overrides' yaml_load
    return [f"{key}={yaml_dump(value)}" for key, value in point.items()]


# -- the sweep's spec ----------------------------------------------------------------------------


@dataclass
class SweepSpec:
    """What a sweep runs: the resolved base config, the grid, the seeds and where it writes."""

    base: dict[str, Any]
    grid: list[tuple[str, list[Any]]]
    seeds: int
    out: str
    config_path: str = ""
    slugs: list[str] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)

    def trial_config(self, point: Mapping[str, Any], seed: int) -> ExperimentConfig:
        """The checked config of one trial (raises ConfigError naming a bad key)."""
        data = apply_overrides(self.base, [*_point_overrides(point), f"train.seed={seed}"])
        return build_dataclass(ExperimentConfig, data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_path": self.config_path,
            "seeds": self.seeds,
            "grid": [{"key": key, "values": values} for key, values in self.grid],
            "base": self.base,
        }


def _validate(config: ExperimentConfig, where: str) -> None:
    """The checks :func:`rlsuite.training.build` makes, without building the env or agent."""
    from rlsuite.registry import ENVS, get_agent_class

    try:
        if config.env.id not in ENVS:
            raise ConfigError(
                f"env.id: unknown environment {config.env.id!r}; known: {', '.join(sorted(ENVS))}"
            )
        agent_cls = get_agent_class(config.agent.name)
        build_dataclass(agent_cls.Config, config.agent.params, where="agent.params")
        eval_seeds = set(parse_seed_range(config.eval.seeds, where="eval.seeds"))
        train_seeds = range(config.train.seed, config.train.seed + config.env.num_envs)
        overlap = sorted(eval_seeds.intersection(train_seeds))
        if overlap:
            raise ConfigError(
                f"eval.seeds: {overlap} are also training seeds (train.seed {config.train.seed}, "
                f"env.num_envs {config.env.num_envs}); choose held-out eval.seeds"
            )
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def prepare_sweep(
    config_path: str | Path,
    grid: Sequence[str] | Sequence[tuple[str, Sequence[Any]]],
    seeds: int,
    out: str | Path,
    overrides: Sequence[str] = (),
) -> SweepSpec:
    """The sweep's spec, every trial's config checked before anything runs.

    ``grid`` is ``--grid`` strings or already parsed ``(key, values)`` pairs; ``overrides``
    are ``--set`` strings applied to the base config first.
    """
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"--seeds: expected a positive number of seeds, got {seeds!r}")
    parsed = (
        parse_grid(grid)
        if all(isinstance(g, str) for g in grid)
        else [
            (str(key), list(values))
            for key, values in grid  # type: ignore[misc]
        ]
    )
    base_config = load_config(config_path, overrides)
    spec = SweepSpec(
        base=config_to_dict(base_config),
        grid=parsed,
        seeds=seeds,
        out=str(Path(out).resolve()),
        config_path=str(config_path),
    )
    _fill_points(spec)
    return spec


def _fill_points(spec: SweepSpec) -> None:
    spec.points = expand_grid(spec.grid)
    spec.slugs = [point_slug(p) for p in spec.points]
    if len(set(spec.slugs)) != len(spec.slugs):
        raise ConfigError("--grid: two grid points give the same directory name; use other values")
    for point, slug in zip(spec.points, spec.slugs, strict=True):
        for seed in range(spec.seeds):
            where = f"grid point {slug}, seed {seed}"
            try:
                config = spec.trial_config(point, seed)
            except ConfigError as err:
                raise ConfigError(f"{spec.config_path or 'config'} ({where}): {err}") from None
            _validate(config, f"{spec.config_path or 'config'} ({where})")


def _load_spec(out: Path) -> SweepSpec:
    path = out / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"--resume: {str(out)!r} holds no sweep ({SPEC_FILE} not found)")
    data = yaml_load(path.read_text(encoding="utf-8"))
    spec = SweepSpec(
        base=data["base"],
        grid=[(g["key"], list(g["values"])) for g in data["grid"]],
        seeds=int(data["seeds"]),
        out=str(out.resolve()),
        config_path=str(data.get("config_path", "")),
    )
    _fill_points(spec)
    return spec


# -- one trial -----------------------------------------------------------------------------------


def _append_jsonl(path: Path, row: Mapping[str, Any]) -> None:
    line = (json.dumps(dict(row)) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.write(fd, line)  # one write in append mode: lines from parallel trials do not mix
    finally:
        os.close(fd)


def _checkpoint_step(run_path: Path) -> int:
    from rlsuite.runs import RunDir, load_checkpoint

    checkpoint = RunDir.open(run_path).latest_checkpoint()
    if checkpoint is None:
        return 0
    return int(load_checkpoint(checkpoint)[1].get("step", 0))


def _trial(params: dict[str, Any], *, spec: dict[str, Any]) -> None:
    """One Tune trial: train (or continue) a run directory, evaluate it, report the return."""
    import ray
    from ray import tune

    from rlsuite.evaluation import evaluate, write_json
    from rlsuite.runs import RunDir
    from rlsuite.training import train

    slug, seed = str(params["point"]), int(params["seed"])
    index = spec["slugs"].index(slug)
    point = spec["points"][index]
    out = Path(spec["out"])
    run_path = out / slug / f"seed{seed}"
    fault = out / slug / f"seed{seed}{FAULT_SUFFIX}"
    trial_id = f"{slug}/seed{seed}"
    resuming = (run_path / RunDir.CONFIG).is_file()
    start = _checkpoint_step(run_path) if resuming else 0
    log = out / TRIAL_LOG
    attempt = 1
    if log.is_file():
        lines = log.read_text(encoding="utf-8").splitlines()
        attempt += sum(1 for line in lines if f'"trial": "{trial_id}"' in line)
    where = {"host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()}
    _append_jsonl(
        log,
        {"trial": trial_id, "attempt": attempt, "start_step": start, "time": time.time(), **where},
    )

    def on_checkpoint(_: RunDir, step: int) -> None:
        if step > start and fault.is_file():
            mode = fault.read_text(encoding="utf-8").strip()
            if mode != "always":
                fault.unlink()
            raise RuntimeError(f"{trial_id}: injected crash after the checkpoint at step {step}")
        tune.report({"step": step})

    if resuming:
        run = train(  # Tune runs one attempt of a trial at a time: a lock left is stale
            None,  # type: ignore[arg-type]
            resume=run_path,
            progress=False,
            on_checkpoint=on_checkpoint,
            take_over_lock=True,
        )
    else:
        if run_path.exists():  # a crash while the run directory was being created
            shutil.rmtree(run_path)
        sweep = SweepSpec(base=spec["base"], grid=[], seeds=1, out=spec["out"])
        config = sweep.trial_config(point, seed)
        run = train(config, run_path, progress=False, on_checkpoint=on_checkpoint)
    rows = evaluate(run.path)
    (run.path / "eval").mkdir(exist_ok=True)
    write_json(rows, run.path / "eval" / "results.json")
    agent = rows[0]
    result = {
        "point": point,
        "slug": slug,
        "seed": seed,
        "run_dir": str(run.path),
        "steps": _checkpoint_step(run.path),
        "eval_return": agent.mean_return,
        "eval_ci95": [agent.ci95_low, agent.ci95_high],
        "eval_episodes": agent.episodes,
        "episode_metrics": {k: v[1] for k, v in agent.metrics.items()},
        "baselines": {r.policy: r.mean_return for r in rows[1:]},
        "attempts": attempt,
    }
    tmp = run.path / f".{RESULT_FILE}.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run.path / RESULT_FILE)
    metrics = {f"metric/{k}": v for k, v in result["episode_metrics"].items()}
    tune.report({"step": result["steps"], "eval_return": agent.mean_return, **metrics})


# -- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRow:
    """One grid point: the eval return (and each episode metric) over the seeds that finished."""

    point: dict[str, Any]
    slug: str
    seeds_done: int
    seeds: int
    eval_return: tuple[float, float, float]
    """(mean, 95% CI low, 95% CI high) over seeds of the agent's mean eval return."""
    metrics: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Per episode metric, (mean, CI low, CI high) over seeds of the per-seed median."""


def _trial_results(spec: SweepSpec, slug: str) -> list[dict[str, Any]]:
    found = []
    for seed in range(spec.seeds):
        path = Path(spec.out) / slug / f"seed{seed}" / RESULT_FILE
        if path.is_file():
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return found


def summarize(spec: SweepSpec) -> tuple[list[SweepRow], list[dict[str, Any]]]:
    """Rows per grid point and every finished trial's result, read from the run directories."""
    from rlsuite.evaluation import confidence_interval

    nan3 = (math.nan, math.nan, math.nan)
    rows, trials = [], []
    for point, slug in zip(spec.points, spec.slugs, strict=True):
        results = _trial_results(spec, slug)
        trials.extend(results)
        returns = np.array([r["eval_return"] for r in results], dtype=np.float64)
        keys = sorted({k for r in results for k in r["episode_metrics"]})
        metrics = {}
        for key in keys:
            values = [r["episode_metrics"][key] for r in results if key in r["episode_metrics"]]
            metrics[key] = confidence_interval(np.array(values, dtype=np.float64))
        rows.append(
            SweepRow(
                point=dict(point),
                slug=slug,
                seeds_done=len(results),
                seeds=spec.seeds,
                eval_return=confidence_interval(returns) if len(results) else nan3,
                metrics=metrics,
            )
        )
    return rows, trials


def _fmt(stat: tuple[float, float, float]) -> str:
    mean, low, high = stat
    if math.isnan(mean):
        return "-"
    return f"{mean:.5g} ± {(high - low) / 2:.3g}"


def print_summary(rows: Sequence[SweepRow], spec: SweepSpec) -> None:
    """A rich table: per grid point, seeds done and mean ± 95% CI half-width over seeds."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    keys = [key for key, _ in spec.grid]
    metric_keys = sorted({k for r in rows for k in r.metrics})
    table = Table(title="sweep: mean ± 95% CI over seeds")
    for key in keys or ["grid point"]:
        table.add_column(escape(key), no_wrap=True)
    table.add_column("seeds", justify="right")
    table.add_column("eval return", justify="right", no_wrap=True)
    for key in metric_keys:
        table.add_column(escape(f"{key} (median)"), justify="right", no_wrap=True)
    for r in rows:
        point_cells = [_value_text(r.point[k]) for k in keys] or [r.slug]
        cells = [
            *point_cells,
            f"{r.seeds_done}/{r.seeds}",
            _fmt(r.eval_return),
            *(_fmt(r.metrics[k]) if k in r.metrics else "-" for k in metric_keys),
        ]
        table.add_row(*map(escape, cells))
    Console(width=max(100, 24 * (len(keys) + len(metric_keys) + 2))).print(table)


def write_summary(
    rows: Sequence[SweepRow], trials: Sequence[Mapping[str, Any]], spec: SweepSpec
) -> tuple[Path, Path]:
    """``OUT/sweep.csv`` (one row per grid point) and ``OUT/sweep.json`` (rows and trials)."""
    out = Path(spec.out)
    keys = [key for key, _ in spec.grid]
    metric_keys = sorted({k for r in rows for k in r.metrics})
    header = [*keys, "seeds_done", "seeds", "eval_return_mean", "eval_return_ci95_low"]
    header += ["eval_return_ci95_high"]
    for key in metric_keys:
        header += [f"{key}_mean", f"{key}_ci95_low", f"{key}_ci95_high"]
    csv_path = out / "sweep.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for r in rows:
            cells: list[Any] = [_value_text(r.point[k]) for k in keys]
            cells += [r.seeds_done, r.seeds, *r.eval_return]
            for key in metric_keys:
                cells += list(r.metrics.get(key, (math.nan,) * 3))
            writer.writerow(cells)
    json_path = out / "sweep.json"
    payload = {
        "spec": spec.to_dict(),
        "rows": [asdict(r) for r in rows],
        "trials": list(trials),
    }
    text = json.dumps(payload, indent=2, default=lambda v: None)
    json_path.write_text(text.replace("NaN", "null") + "\n", encoding="utf-8")
    return csv_path, json_path


# -- running -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` returns: the summary rows and how many trials did not finish."""

    spec: SweepSpec
    rows: list[SweepRow]
    trials: int
    unfinished: int
    csv_path: Path
    json_path: Path


def run_sweep(
    config_path: str | Path | None,
    grid: Sequence[str] = (),
    seeds: int | None = None,
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    address: str | None = None,
    num_cpus: int | None = None,
    max_concurrent: int | None = None,
    max_failures: int = 2,
    resume: bool = False,
    verbose: int = 1,
) -> SweepOutcome:
    """Run (or with ``resume`` continue) a sweep; returns its summary, also written under OUT.

    Connects to the Ray cluster at ``address`` (or ``RAY_ADDRESS``) if given, else starts an
    embedded local Ray instance (``num_cpus`` CPUs); a Ray instance already initialised in
    this process is used as is.
    """
    require_ray()
    if max_failures < 0:
        raise ConfigError(f"--max-failures: expected an int >= 0, got {max_failures}")
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"--max-concurrent: expected a positive int, got {max_concurrent}")
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out, the directory of the sweep to continue")
        spec = _load_spec(Path(out))
        _check_resume_args(spec, config_path, grid, seeds, overrides)
    else:
        if config_path is None:
            raise ConfigError("rlsuite sweep needs a CONFIG.yaml (or --out OUT --resume)")
        if out is None:
            name = Path(config_path).stem
            out = Path("sweeps") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        spec = prepare_sweep(config_path, grid, seeds or 1, out, overrides)
        out_path = Path(spec.out)
        if (out_path / SPEC_FILE).exists() or (out_path / TUNE_DIR).exists():
            raise ConfigError(
                f"--out {str(out)!r} already holds a sweep; continue it with --resume, "
                "or choose another --out"
            )

    import ray
    from ray import tune

    # connect before anything is written, so a failed connection leaves no half-made OUT
    started = not ray.is_initialized()
    if started:
        connect(address, num_cpus)
    try:
        if not resume:
            out_path.mkdir(parents=True, exist_ok=True)
            (out_path / SPEC_FILE).write_text(yaml_dump(spec.to_dict()), encoding="utf-8")
        trainable = tune.with_parameters(_trial, spec=_trial_spec(spec))
        experiment = str(Path(spec.out) / TUNE_DIR)
        if resume and tune.Tuner.can_restore(experiment):
            tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_errored=True)
        else:  # a new sweep, or one whose OUT was set up but whose trials never started
            tuner = tune.Tuner(
                trainable,
                param_space={
                    "point": tune.grid_search(spec.slugs),
                    "seed": tune.grid_search(list(range(spec.seeds))),
                },
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=max_concurrent, reuse_actors=True
                ),
                run_config=tune.RunConfig(
                    name=TUNE_DIR,
                    storage_path=spec.out,
                    failure_config=tune.FailureConfig(max_failures=max_failures),
                    verbose=verbose,
                ),
            )
        tuner.fit()
    finally:
        if started:
            with contextlib.suppress(Exception):
                ray.shutdown()

    rows, trials = summarize(spec)
    csv_path, json_path = write_summary(rows, trials, spec)
    total = len(spec.slugs) * spec.seeds
    return SweepOutcome(spec, rows, total, total - len(trials), csv_path, json_path)


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """``ray.init`` for a sweep: the cluster at ``address`` (else ``RAY_ADDRESS``), or an embedded
    local instance with ``num_cpus`` CPUs. A failed connection is a one-line
    :class:`ConfigError` that names the address and the usual fix; the retry warnings Ray's
    core prints meanwhile (one a second for ~20 s) are held back, and shown only on success."""
    import ray

    target = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"address": address} if address else {}
    if not target:
        kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)  # a local instance: its processes keep this process's stderr
        return
    with _held_stderr() as held:
        try:
            ray.init(**kwargs)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError and its own types
            retries = held.read().count(b"\n")
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConfigError(
                f"cannot connect to Ray at {target} ({type(err).__name__}: {first}; "
                f"{retries} lines of Ray's retry log held back); a cluster started with 'ray "
                "start --head' (Ray >= 2.60) wants token authentication: set "
                "RAY_AUTH_MODE=token and the head's token for this driver (README, 'Scale out "
                "on Ray')"
            ) from err
        log = held.read()
    sys.stderr.buffer.write(log)  # connected: nothing is lost
    sys.stderr.flush()


@contextlib.contextmanager
def _held_stderr() -> Iterator[Any]:
    """Point file descriptor 2 (where Ray's C++ core logs) at a temporary file meanwhile;
    yields a reader of what was written there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:

        class Held:
            def read(self) -> bytes:
                capture.seek(0)
                return capture.read()

        os.dup2(capture.fileno(), 2)
        try:
            yield Held()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _trial_spec(spec: SweepSpec) -> dict[str, Any]:
    return {
        "base": spec.base,
        "out": spec.out,
        "slugs": list(spec.slugs),
        "points": copy.deepcopy(spec.points),
    }


def _check_resume_args(
    spec: SweepSpec,
    config_path: str | Path | None,
    grid: Sequence[str],
    seeds: int | None,
    overrides: Sequence[str],
) -> None:
    """With ``--resume``, CONFIG, --set, --grid and --seeds may be left out; given, they must
    describe the saved sweep."""
    if seeds is not None and seeds != spec.seeds:
        raise ConfigError(f"--resume: --seeds {seeds} differs from the sweep's {spec.seeds}")
    if grid and parse_grid(grid) != spec.grid:
        raise ConfigError(f"--resume: --grid differs from the sweep's grid {spec.grid}")
    if config_path is not None:
        base = config_to_dict(load_config(config_path, overrides))
        if base != spec.base:
            raise ConfigError(
                f"--resume: {config_path} (with --set) differs from the sweep's saved config "
                f"({Path(spec.out) / SPEC_FILE})"
            )
    elif overrides:
        raise ConfigError("--resume: --set without CONFIG; the sweep keeps its saved config")
