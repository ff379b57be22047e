"""``benchmarks/rmab.py``: a default run that takes minutes, and an estimate printed first."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("rmab_benchmark", ROOT / "benchmarks/rmab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def estimate_minutes(argv: list[str], capsys) -> float:
    assert load_benchmark().main([*argv, "--estimate"]) == 0
    err = capsys.readouterr().err
    value, unit = re.search(r"about ([\d.]+) (s|min|hours)", err).groups()
    return float(value) * {"s": 1 / 60, "min": 1.0, "hours": 60.0}[unit]


def test_the_default_run_takes_minutes_and_full_hours(capsys) -> None:
    assert estimate_minutes(["--jobs", "2"], capsys) < 10
    assert estimate_minutes([], capsys) < 15
    assert estimate_minutes(["--full", "--jobs", "2"], capsys) > 60
    # the old default (every size, 60 s per MILP) is a day and more
    assert estimate_minutes(["--full", "--time-limit", "60"], capsys) > 24 * 60


def test_estimate_bounds_every_task() -> None:
    bench = load_benchmark()
    for family in bench.FAMILIES:
        for size in bench.BUDGETS:
            for name in bench.NAMES:
                if bench.applies(family, name):
                    typical, worst = bench.estimate_seconds(family, size, name, 50, 3.0)
                    assert 0 < typical <= worst
    # a greedy solve that always reaches the limit costs the limit
    assert bench.estimate_seconds("path", 100, "greedy", 10, 3.0) == (600.0, 600.0)


def test_full_and_sizes_exclude_each_other(capsys) -> None:
    with pytest.raises(SystemExit):
        load_benchmark().main(["--full", "--sizes", "20", "--estimate"])
    assert "--full runs every size" in capsys.readouterr().err
