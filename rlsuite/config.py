"""Experiment configs: YAML files mapped onto typed dataclasses, with errors that say what to fix.

A config file has four sections, each a dataclass below::

    name: sor-tsallis-inf
    env:   {id: rlsuite/SOR-ShiftedLaplacian-v0, kwargs: {n: 10}, num_envs: 1}
    agent: {name: tsallis_inf, params: {}}
    train: {total_steps: 600, seed: 0, checkpoint_every: 200, log_every: 50}
    eval:  {episodes: 5, seeds: "1000:1005", baselines: [best_fixed]}

:func:`build_dataclass` checks every value against the dataclass's type hints before any work
starts: an unknown key, a missing required key or a value of the wrong type raises
:class:`ConfigError` naming the full dotted key (``agent.params.learning_rat``), the value
received and what is allowed. Agents validate ``agent.params`` against their own ``Config``
dataclass the same way (:func:`validate_params`).

YAML is read with YAML 1.2 number rules rather than PyYAML's YAML 1.1 ones, so ``3e-4`` is a
float (not the string ``"3e-4"``), ``10:20`` is a string (not the base-60 integer 620) and
``010`` is a string (not octal 8). Duplicate keys in a mapping are an error.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

__all__ = [
    "AgentConfig",
    "ConfigError",
    "EnvConfig",
    "EvalConfig",
    "ExperimentConfig",
    "TrainConfig",
    "apply_overrides",
    "build_dataclass",
    "config_to_dict",
    "dump_config",
    "load_config",
    "parse_seed_range",
    "validate_params",
    "yaml_dump",
    "yaml_load",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value, key or file is wrong; the message names it and says what is allowed."""


# -- YAML with YAML 1.2 numbers ------------------------------------------------------------------

_INT_RE = re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0b[01_]+)$")
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)
_NUMBER_FIRST_CHARS = list("-+0123456789.")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _yaml12_number_resolvers(cls: type[yaml.resolver.BaseResolver]) -> None:
    """Replace PyYAML's YAML 1.1 int/float resolvers on ``cls`` with YAML 1.2-style ones."""
    cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    cls.add_implicit_resolver(_INT_TAG, _INT_RE, _NUMBER_FIRST_CHARS)  # ints before floats
    cls.add_implicit_resolver(_FLOAT_TAG, _FLOAT_RE, _NUMBER_FIRST_CHARS)


class _Loader(yaml.SafeLoader):
    """Safe loader with YAML 1.2 numbers that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: let PyYAML report it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first given on line {first})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """Safe dumper whose quoting agrees with :class:`_Loader` (``"1e4"`` stays a string)."""


_yaml12_number_resolvers(_Loader)
_yaml12_number_resolvers(_Dumper)


def yaml_load(text: str) -> Any:
    """Parse YAML text the way config files are read (safe, YAML 1.2 numbers, no duplicates)."""
    return yaml.load(text, Loader=_Loader)  # _Loader derives from SafeLoader


def yaml_dump(data: Any) -> str:
    """YAML text that :func:`yaml_load` reads back to ``data`` (block style, key order kept)."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


# -- typed dataclasses from mappings -------------------------------------------------------------


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _received(value: Any) -> str:
    return f"{_short_repr(value)} ({type(value).__name__})"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(tp: Any) -> str:
    """A readable name for a type hint, as written in a dataclass (``list[int] | None``)."""
    if tp is Any:
        return "any value"
    if tp is type(None):
        return "None"
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return f"a mapping for {tp.__name__}"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", str(tp))


def _wrong_type(key: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{key}: expected {_type_name(tp)}, got {_received(value)}")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against (and, for numbers and containers, converted to) type ``tp``."""
    if tp is Any or tp is object:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise _wrong_type(key, value, tp)
        return build_dataclass(tp, value, where=key)

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return allowed
        allowed_text = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{key}: got {_received(value)}; allowed values: {allowed_text}")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: keep errors from inside X (nested keys, items)
            try:
                return _convert(value, options[0], key)
            except ConfigError as err:
                if str(err).startswith(f"{key}: expected "):
                    raise _wrong_type(key, value, tp) from None
                raise
        for option in options:
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise _wrong_type(key, value, tp)
    if origin in (list, Sequence) or tp in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise _wrong_type(key, value, tp)
        item_tp = args[0] if args else Any
        return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise _wrong_type(key, value, tp)
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            item_tp = args[0] if args else Any
            return tuple(_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(
                f"{key}: expected {_type_name(tp)} ({len(args)} items), got {len(value)} items: "
                f"{_short_repr(value)}"
            )
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in pairs)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _wrong_type(key, value, tp)
        key_tp, value_tp = args if args else (Any, Any)
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if key_tp is str and not isinstance(k, str):
                raise ConfigError(f"{key}: keys must be strings, got key {_received(k)}")
            sub = _join(key, str(k))
            out[_convert(k, key_tp, sub)] = _convert(v, value_tp, sub)
        return out
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _wrong_type(key, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)  # 1e4 or 100.0 written for an int field
        raise _wrong_type(key, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ConfigError(f"{key}: {_received(value)} is too large for a float") from None
        raise _wrong_type(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _wrong_type(key, value, tp)
    raise TypeError(f"{key}: config fields of type {_type_name(tp)} are not supported")


def build_dataclass(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "") -> T:
    """An instance of dataclass ``cls`` from ``data``, every value checked against the type hints.

    Supported field types: ``int`` (``bool`` is not an int; an integral float such as ``1e4`` is
    accepted), ``float`` (ints are converted), ``bool``, ``str``, ``Literal[...]``, ``X | None``
    and other unions, ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]``, ``Any``
    and nested dataclasses (also inside lists and dicts). ``None`` means an empty mapping.
    ``where`` is the dotted prefix of every key named in an error (``"agent.params"``).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"build_dataclass needs a dataclass type, got {cls!r}")
    if isinstance(data, cls):
        return data
    label = where or "the config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping for {cls.__name__}, got {_received(data)}")
    try:
        hints = typing.get_type_hints(cls)
    except NameError as err:
        raise TypeError(f"cannot resolve the type hints of {cls.__name__}: {err}") from err
    fields = [f for f in dataclasses.fields(cls) if f.init]
    allowed = [f.name for f in fields]

    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{label}: keys must be strings, got key {_received(key)}")
        if key not in allowed:
            message = f"{_join(where, key)}: unknown key; allowed keys: {', '.join(allowed)}"
            close = difflib.get_close_matches(key, allowed, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
            raise ConfigError(message)

    kwargs: dict[str, Any] = {}
    for f in fields:
        key = _join(where, f.name)
        if f.name not in data:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required:
                expected = _type_name(hints[f.name])
                raise ConfigError(f"{key}: required key missing ({cls.__name__} needs {expected})")
            continue
        kwargs[f.name] = _convert(data[f.name], hints[f.name], key)
    return cls(**kwargs)


def validate_params(
    cls: type[T], params: Mapping[str, Any] | None, where: str = "agent.params"
) -> T:
    """An agent's ``Config`` dataclass from ``agent.params`` (see :func:`build_dataclass`)."""
    return build_dataclass(cls, params, where=where)


# -- the experiment config -----------------------------------------------------------------------

_DEVICE_RE = re.compile(r"^(?:cpu|cuda(?::[0-9]+)?)$")
_SEED_RANGE_RE = re.compile(r"^\s*([0-9]+)\s*:\s*([0-9]+)\s*$")


def parse_seed_range(text: str, *, where: str = "seed range") -> range:
    """``"1000:1010"`` -> ``range(1000, 1010)``: a half-open range of non-negative seeds, A < B."""
    if not isinstance(text, str):
        raise ConfigError(
            f"{where}: expected a string 'A:B' (e.g. '1000:1010'), got {_received(text)}"
        )
    match = _SEED_RANGE_RE.match(text)
    if match is None:
        raise ConfigError(
            f"{where}: expected 'A:B', a half-open range of non-negative integer seeds "
            f"(e.g. '1000:1010'), got {text!r}"
        )
    low, high = int(match.group(1)), int(match.group(2))
    if high > 2**63:
        raise ConfigError(
            f"{where}: {text!r} reaches past the int64 seeds; 'A:B' needs B <= 2**63 ({2**63})"
        )
    if low >= high:
        raise ConfigError(
            f"{where}: {text!r} is empty; 'A:B' needs A < B (e.g. '{low}:{low + 10}')"
        )
    return range(low, high)


def _require_positive(key: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be a positive integer, got {value!r}")


@dataclasses.dataclass
class EnvConfig:
    """The environment: a registered gymnasium id and its constructor arguments."""

    id: str
    """Gymnasium id, e.g. ``"rlsuite/SOR-ShiftedLaplacian-v0"``."""
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Passed to the env constructor."""
    num_envs: int = 1
    """Batch size of the native vector env used for training."""

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError(
                "env.id: must be a non-empty gymnasium id, e.g. 'rlsuite/SOR-ShiftedLaplacian-v0'"
            )
        _require_positive("env.num_envs", self.num_envs)


@dataclasses.dataclass
class AgentConfig:
    """The agent: a registry name and hyperparameters for its own ``Config`` dataclass."""

    name: str
    """Registry name, e.g. ``"tsallis_inf"`` or ``"sb3.PPO"``."""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Validated later against the agent's ``Config`` (:func:`validate_params`)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("agent.name: must be a non-empty agent name (see `rlsuite list`)")


@dataclasses.dataclass
class TrainConfig:
    """How long and where to train, and how often to log and checkpoint."""

    total_steps: int
    """Env steps summed over the batch."""
    seed: int = 0
    device: str = "cpu"
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    checkpoint_every: int = 1000
    """Env steps between checkpoints."""
    log_every: int = 100
    """Env steps between metrics rows."""
    threads: int | None = None
    """torch's CPU threads for the run (``None``: one; see :mod:`rlsuite.threads`)."""

    def __post_init__(self) -> None:
        _require_positive("train.total_steps", self.total_steps)
        if self.threads is not None:
            _require_positive("train.threads", self.threads)
        _require_positive("train.checkpoint_every", self.checkpoint_every)
        _require_positive("train.log_every", self.log_every)
        if not 0 <= self.seed < 2**63:
            raise ConfigError(
                f"train.seed: got {self.seed}; seeds are int64 values >= 0, "
                f"in [0, 2**63 - env.num_envs]"
            )
        if not _DEVICE_RE.match(self.device):
            raise ConfigError(
                f"train.device: got {self.device!r}; "
                "allowed: 'cpu', 'cuda' or 'cuda:N' (N a GPU index)"
            )


@dataclasses.dataclass
class EvalConfig:
    """Held-out evaluation: how many episodes, on which seeds, against which baselines."""

    episodes: int = 10
    seeds: str = "1000:1010"
    """``"A:B"``, a half-open range of held-out seeds."""
    baselines: list[str] = dataclasses.field(default_factory=list)
    """Names understood by the env family's baselines."""
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Env constructor arguments that replace ``env.kwargs`` entries for evaluation only
    (e.g. a shorter ``sequence_length``)."""

    def __post_init__(self) -> None:
        _require_positive("eval.episodes", self.episodes)
        seeds = parse_seed_range(self.seeds, where="eval.seeds")
        if self.episodes > len(seeds):
            raise ConfigError(
                f"eval.episodes: {self.episodes} episodes need at least {self.episodes} seeds, "
                f"but eval.seeds {self.seeds!r} has {len(seeds)}"
            )


@dataclasses.dataclass
class ExperimentConfig:
    """A whole experiment, as one YAML file."""

    env: EnvConfig
    agent: AgentConfig
    train: TrainConfig
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    name: str = ""
    """Optional human label (used in the default run directory name)."""

    def __post_init__(self) -> None:
        last = self.train.seed + self.env.num_envs - 1  # env i of the batch plays seed + i
        if last >= 2**63:
            raise ConfigError(
                f"train.seed: got {self.train.seed}; with env.num_envs {self.env.num_envs} the "
                f"env seeds reach {last}, past the int64 range: use a seed <= "
                f"{2**63 - self.env.num_envs}"
            )


# -- files and overrides -------------------------------------------------------------------------


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with ``"a.b.c=value"`` overrides applied (``data`` is not changed).

    The value is parsed as YAML (``3`` -> int, ``[1, 2]`` -> list, ``cuda`` -> str, an empty
    value -> ``None``); missing intermediate mappings are created.
    """
    if isinstance(overrides, str):
        raise ConfigError(
            f"overrides must be a list of 'key=value' strings, got the string {overrides!r}"
        )
    result: dict[str, Any] = copy.deepcopy(dict(data))
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(
                f"override {item!r}: expected 'dotted.key=value', e.g. 'train.seed=3'"
            )
        dotted, text = item.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise ConfigError(
                f"override {item!r}: {dotted!r} is not a dotted key like 'agent.params.lr'"
            )
        try:
            value = yaml_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: the value {text!r} is not valid YAML ({err})"
            ) from None
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"override {item!r}: {prefix} is {_received(child)}, not a mapping, "
                    f"so it has no key {parts[depth + 1]!r}"
                )
            node = child
        node[parts[-1]] = value
    return result


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} not found")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {err}") from None
    try:
        data = yaml_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        raise ConfigError(
            f"config file {str(path)!r} is empty; expected a mapping with keys env, agent, train"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r}: expected a mapping with keys env, agent, train "
            f"at the top level, got {type(data).__name__}"
        )
    return data


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read an experiment config, apply ``--set`` style overrides and check every value."""
    path = Path(path)
    data = apply_overrides(_read_yaml_mapping(path), overrides)
    try:
        return build_dataclass(ExperimentConfig, data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def _plain(value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), _join(key, f.name))
            for f in dataclasses.fields(value)
            if f.init
        }
    if isinstance(value, Mapping):
        return {k: _plain(v, _join(key, str(k))) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _plain(item(), key)
    raise ConfigError(
        f"{key or 'config'}: {_received(value)} cannot be written to a YAML/JSON config"
    )


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config (or a mapping) as plain dicts, lists and scalars, safe for YAML and JSON.

    Tuples become lists and numpy/torch scalars become Python numbers; fields with
    ``init=False`` are left out, so :func:`build_dataclass` reads the result back.
    """
    is_instance = dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)
    if not (is_instance or isinstance(cfg, Mapping)):
        raise TypeError(
            f"config_to_dict needs a dataclass instance or a mapping, got {type(cfg).__name__}"
        )
    return _plain(cfg, "")


def dump_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML that :func:`load_config` reads back to an equal config."""
    Path(path).write_text(yaml_dump(config_to_dict(cfg)), encoding="utf-8")
