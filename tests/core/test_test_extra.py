"""The CI guard in tests/conftest.py: it reads every package of the ``[test]`` extra and names
the ones that cannot be imported."""

from __future__ import annotations

from pathlib import Path

from conftest import imports_of_the_test_extra, unimportable


def test_every_test_extra_package_has_its_import_name() -> None:
    assert imports_of_the_test_extra() == {
        "pyscipopt": "pyscipopt",
        "highspy": "highspy",
        "pytest": "pytest",
        "hypothesis": "hypothesis",
        "pytest-xdist": "xdist",
        "build": "build",
        "setuptools": "setuptools",
        "wheel": "wheel",
        "stable-baselines3": "stable_baselines3",
        "sb3-contrib": "sb3_contrib",
        "rebound": "rebound",
        "qldpc": "qldpc",
        "galois": "galois",  # tests/envs/qcode/test_gf2_distance.py checks GF(2) against it
    }  # tomli only below Python 3.11 (its marker is evaluated)


def test_unimportable_packages_are_named(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\n[project.optional-dependencies]\n'
        'test = ["pytest>=8", "No_Such.Package-x>=1", "other; python_version < \'3\'"]\n'
    )
    modules = imports_of_the_test_extra(pyproject)
    assert modules == {"pytest": "pytest", "no-such-package-x": "no_such_package_x"}
    failures = unimportable(modules)
    assert len(failures) == 1
    assert failures[0].startswith(
        "no-such-package-x (import no_such_package_x): ModuleNotFoundError"
    )
