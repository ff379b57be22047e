"""The README runs as written: every ```python block, and the commands of every ```bash block.

The README's conventions (its section "Testing this README" says the same):

* Every ```python block runs on its own, in a fresh namespace with a temporary working
  directory, so it must hold its own imports. A comment line in it of the form
  ``# ... needs the [EXTRA] extra (module, module): ...`` names the optional modules it uses;
  the block is skipped, saying which, only when one of them is not installed.
* Every command of a ```bash block is checked without running it: ``rlsuite VERB ...`` parses
  with rlsuite's own argument parser, and a CONFIG it names exists and loads with its ``--set``
  (and the first value of each ``--grid``) overrides, naming a registered env id and agent;
  ``python benchmarks/X.py ...`` (or ``scripts/``): the file exists and defines every ``--flag``
  given; ``pip install -e ".[A,B]"``: pyproject.toml has those extras; ``pytest -m M``: the
  marker ``M`` is declared.
* A comment line ``# readme-test: run [needs=MODULE,...] [ARGS]`` in a bash block runs the
  ``rlsuite`` commands after it (in a temporary directory that sees the repository's
  ``configs/``), with ``ARGS`` (a budget such as ``--set train.total_steps=20``) appended to
  each ``rlsuite train CONFIG``; ``# readme-test: skip (REASON)`` goes back to checking only.
  When a ``needs=`` module is missing, those commands are only checked and the test reports
  the skip after the rest has passed.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import os
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DIRECTIVE = re.compile(r"^\s*#\s*readme-test:\s*(?P<verb>\w+)\s*(?P<rest>.*)$")
NEEDS_EXTRA = re.compile(r"#.*needs the \[(?P<extra>[\w-]+)\] extra \((?P<modules>[\w, ]+)\)")


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README."""

    language: str
    line: int  # of the opening fence, 1-based
    code: str

    @property
    def id(self) -> str:
        return f"{self.language}-line{self.line}"


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced block (```lang ... ```) of the README, in order."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks, opening = [], None
    for i, line in enumerate(lines):
        fence = line.strip()
        if opening is None and fence.startswith("```"):
            opening = (i, fence[3:].strip())
        elif opening is not None and fence == "```":
            start, language = opening
            blocks.append(Block(language, start + 1, "\n".join(lines[start + 1 : i])))
            opening = None
    assert opening is None, f"README.md: the block opened at line {opening[0] + 1} never closes"
    return blocks


BLOCKS = readme_blocks()
PYTHON = [b for b in BLOCKS if b.language == "python"]
BASH = [b for b in BLOCKS if b.language == "bash"]


def python_block_after(marker: str) -> Block:
    """The first ```python block after the first README line that starts with ``marker``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    return next(b for b in PYTHON if b.line > start)


@contextlib.contextmanager
def working_directory(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def skip_without_extras(block: Block) -> None:
    for match in NEEDS_EXTRA.finditer(block.code):
        for module in (m.strip() for m in match["modules"].split(",")):
            pytest.importorskip(
                module,
                reason=f"README.md line {block.line} needs {module} "
                f"(pip install -e '.[{match['extra']}]')",
            )


# -- values the blocks claim ----------------------------------------------------------------------
def check_sparse_sequence(ns: dict[str, Any], out: str) -> None:
    assert ns["reward"] == -ns["info"]["iterations"] < 0 and ns["info"]["converged"]
    assert ns["info"]["omega"] == pytest.approx(1.5)
    assert ns["env"].unwrapped.core.family.size == 8 and len(ns["env"].unwrapped.core.family) == 3
    assert len(ns["one"].unwrapped.core.family) == 1


def check_three_body(ns: dict[str, Any], out: str) -> None:
    assert float(ns["info"]["time"]) == pytest.approx(6.3259140, abs=1e-9)
    assert 0 < float(ns["info"]["energy_error"]) < 1e-8
    assert float(ns["info"]["eta"]) == pytest.approx(0.01)
    assert out.startswith("6.3259")


def check_search_model(ns: dict[str, Any], out: str) -> None:
    children = ns["children"]
    assert len(children.rewards) == len(ns["legal"]) >= 2
    assert ns["envs"].unwrapped.episode_step.tolist() == [1, 0]
    assert out.startswith("tensor([")


def check_instance_list(ns: dict[str, Any], out: str) -> None:
    printed = [line for line in ns["__block__"].splitlines() if line.startswith("# [")]
    assert out.strip() == printed[0][2:]  # the output the block shows in its comment


def check_cormab(ns: dict[str, Any], out: str) -> None:
    core = ns["core"]
    assert core.is_feasible(ns["x"]) and not core.broken_rules(ns["x"])
    assert core.is_feasible(ns["action"])


def check_qcode(ns: dict[str, Any], out: str) -> None:
    assert float(ns["estimate_distance"](ns["code"].hx, ns["code"].hz, trials=32)[0]) == 6
    assert ns["exact_distance"](ns["code"]) == 6


VALUE_CHECKS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "`rlsuite/SOR-SparseSequence-v0` solves": check_sparse_sequence,
    "A three-body action `k` plays": check_three_body,
    "Ids marked `model` in `rlsuite list`": check_search_model,
    "`instance=` also takes a list": check_instance_list,
    "A coRMAB action is the binary vector": check_cormab,
    "Quantum codes are `CSSCode(hx, hz)` pairs": check_qcode,
}


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_runs_alone(block: Block, tmp_path: Path, capsys) -> None:
    skip_without_extras(block)
    namespace: dict[str, Any] = {"__name__": "readme_example", "__block__": block.code}
    with working_directory(tmp_path):
        exec(compile(block.code, f"README.md line {block.line}", "exec"), namespace)
    out = capsys.readouterr().out
    for marker, check in VALUE_CHECKS.items():
        if python_block_after(marker) == block:
            check(namespace, out)


def test_value_checks_find_their_blocks() -> None:
    for marker in VALUE_CHECKS:
        python_block_after(marker)  # raises StopIteration when the README lost the marker


# -- bash blocks ----------------------------------------------------------------------------------
@dataclass
class Command:
    argv: list[str]
    line: int
    run: bool = False
    run_args: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # needs= modules not installed


def bash_commands(block: Block) -> list[Command]:
    """The block's commands (lines split at ``&&`` and ``;``; comments dropped), each marked
    with the ``# readme-test:`` directive in force."""
    commands: list[Command] = []
    run, run_args, missing = False, [], []
    for offset, raw in enumerate(block.code.splitlines(), start=1):
        line = block.line + offset
        directive = DIRECTIVE.match(raw)
        if directive:
            verb, rest = directive["verb"], directive["rest"]
            if verb == "skip":
                assert re.fullmatch(r"\(.+\)", rest.strip()), (
                    f"README.md line {line}: '# readme-test: skip (REASON)' needs a reason"
                )
                run, run_args, missing = False, [], []
            elif verb == "run":
                tokens = shlex.split(rest)
                needs = [t for t in tokens if t.startswith("needs=")]
                run_args = [t for t in tokens if not t.startswith("needs=")]
                modules = [m for t in needs for m in t[len("needs=") :].split(",") if m]
                missing = [m for m in modules if importlib.util.find_spec(m) is None]
                run = True
            else:
                raise AssertionError(f"README.md line {line}: unknown directive {verb!r}")
            continue
        tokens = shlex.split(raw, comments=True)
        current: list[str] = []
        for token in [*tokens, "&&"]:
            if token in ("&&", ";", "||", "|"):
                if current:
                    commands.append(Command(current, line, run, list(run_args), list(missing)))
                current = []
            else:
                current.append(token)
    return commands


def flags_of_script(path: Path) -> set[str]:
    """The ``--flags`` a script's argparse parser defines (read from its source, not run)."""
    flags = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags |= {
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and str(a.value).startswith("-")
            }
    return flags


def check_rlsuite(argv: list[str], where: str) -> None:
    from rlsuite.cli import build_parser
    from rlsuite.config import load_config
    from rlsuite.registry import AGENTS, ENVS

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as err:
        raise AssertionError(f"{where}: rlsuite rejects {shlex.join(argv)}") from err
    config = getattr(args, "config", None)
    if config:
        assert (ROOT / config).is_file(), f"{where}: no config {config}"
        overrides = list(getattr(args, "overrides", []) or [])
        for grid in getattr(args, "grid", []) or []:
            key, _, values = grid.partition("=")
            overrides.append(f"{key}={values.split(',')[0]}")
        loaded = load_config(ROOT / config, overrides)
        assert loaded.env.id in ENVS, f"{where}: {config} names an unknown env {loaded.env.id}"
        assert loaded.agent.name in AGENTS, f"{where}: {config}: unknown agent {loaded.agent.name}"
    if args.command == "bench":
        assert args.env_id in ENVS, f"{where}: unknown env id {args.env_id}"


def check_command(command: Command) -> None:
    argv, where = command.argv, f"README.md line {command.line}"
    program = argv[0]
    if program == "rlsuite":
        check_rlsuite(argv[1:], where)
    elif program.startswith("python") and len(argv) > 1 and argv[1].endswith(".py"):
        script = ROOT / argv[1]
        assert script.is_file(), f"{where}: no script {argv[1]}"
        flags = flags_of_script(script)
        given = {a.split("=")[0] for a in argv[2:] if a.startswith("--")}
        assert given <= flags, f"{where}: {argv[1]} has no {sorted(given - flags)}"
    elif program == "pip" and "-e" in argv:
        target = argv[argv.index("-e") + 1]
        extras = re.fullmatch(r"\.(?:\[(?P<extras>[\w,-]+)\])?", target)
        assert extras, f"{where}: pip install -e {target}"
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
        wanted = (extras["extras"] or "").split(",")
        assert all(e in declared for e in wanted if e), f"{where}: unknown extra in {target}"
    elif program == "pytest" and "-m" in argv:
        markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
            "ini_options"
        ]["markers"]
        declared = {m.split(":")[0] for m in markers}
        used = set(re.findall(r"\w+", argv[argv.index("-m") + 1])) - {"not", "and", "or"}
        assert used <= declared, f"{where}: undeclared pytest markers {used - declared}"


def run_rlsuite(command: Command) -> None:
    from rlsuite.cli import main

    argv = command.argv[1:]
    if argv[0] == "train":
        argv = [*argv, "--no-progress"]
        if "--resume" not in argv:
            argv += command.run_args
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    assert status == 0, f"README.md line {command.line}: {shlex.join(argv)} exited {status}"


@pytest.mark.parametrize("block", BASH, ids=lambda b: b.id)
def test_bash_block(block: Block, tmp_path: Path) -> None:
    commands = bash_commands(block)
    assert commands, f"README.md line {block.line}: an empty bash block"
    for command in commands:
        check_command(command)
    to_run = [c for c in commands if c.run and c.argv[0] == "rlsuite"]
    if to_run:
        (tmp_path / "configs").symlink_to(ROOT / "configs")
    skipped: set[str] = set()
    with working_directory(tmp_path):
        for command in to_run:
            if command.missing:
                skipped.update(command.missing)
            else:
                run_rlsuite(command)
    if skipped:
        pytest.skip(f"README.md line {block.line}: some commands not run, need {sorted(skipped)}")


# -- the conventions themselves -------------------------------------------------------------------
def test_a_block_without_its_imports_fails() -> None:
    """Blocks are found and run as the tests above run them: one that uses ``gym`` without
    importing it fails, as the coRMAB, mallocGame and qcode blocks once did."""
    text = "Intro\n\n```python\nenv = gym.make('x')\n```\n\n```bash\n# readme-test: skip (no)\nrlsuite list\n```\n"
    blocks = readme_blocks(text)
    assert [b.language for b in blocks] == ["python", "bash"]
    namespace: dict[str, Any] = {}
    with pytest.raises(NameError, match="gym"):
        exec(compile(blocks[0].code, "README", "exec"), namespace)
    commands = bash_commands(blocks[1])
    assert [c.argv for c in commands] == [["rlsuite", "list"]] and not commands[0].run


def test_checks_catch_bad_commands() -> None:
    with pytest.raises(AssertionError, match="rejects"):
        check_command(Command(["rlsuite", "train", "x.yaml", "--no-such-flag"], 1))
    with pytest.raises(AssertionError, match="no config"):
        check_command(Command(["rlsuite", "train", "configs/sor/missing.yaml"], 1))
    with pytest.raises(AssertionError, match="has no"):
        check_command(Command(["python", "benchmarks/rmab.py", "--no-such-flag"], 1))
    with pytest.raises(AssertionError, match="unknown extra"):
        check_command(Command(["pip", "install", "-e", ".[nope]"], 1))


def test_a_block_needing_a_missing_module_is_skipped_naming_it() -> None:
    block = Block("python", 7, "# x needs the [mip] extra (no_such_module_xyz): pip ...\nx = 1\n")
    with pytest.raises(pytest.skip.Exception, match=r"line 7 needs no_such_module_xyz.*\[mip\]"):
        skip_without_extras(block)
    skip_without_extras(Block("python", 8, "# needs the [mip] extra (json)\n"))  # installed
