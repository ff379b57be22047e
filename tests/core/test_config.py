"""Configs: YAML to typed dataclasses, overrides, errors that name the key and what is allowed."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import yaml

from rlsuite.config import (
    AgentConfig,
    ConfigError,
    EnvConfig,
    EvalConfig,
    ExperimentConfig,
    TrainConfig,
    apply_overrides,
    build_dataclass,
    config_to_dict,
    dump_config,
    load_config,
    parse_seed_range,
    validate_params,
    yaml_dump,
    yaml_load,
)

BASE: dict[str, Any] = {
    "name": "test",
    "env": {"id": "rlsuite/SOR-ShiftedLaplacian-v0", "kwargs": {"variance": "low", "n": 6}},
    "agent": {"name": "tsallis_inf", "params": {"learning_rate": 0.5}},
    "train": {"total_steps": 100, "seed": 3, "checkpoint_every": 50, "log_every": 10},
    "eval": {"episodes": 3, "seeds": "100:110", "baselines": ["best_fixed"]},
}


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@dataclasses.dataclass
class Layer:
    width: int
    activation: Literal["relu", "tanh"] = "relu"


@dataclasses.dataclass
class Params:
    learning_rate: float = 1e-3
    num_bins: int = 10
    greedy: bool = False
    mode: Literal["fast", "exact"] = "fast"
    clip: float | None = None
    layers: list[Layer] = dataclasses.field(default_factory=list)
    shape: tuple[int, ...] = (1, 2)
    pair: tuple[int, str] = (0, "a")
    weights: dict[str, float] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    anything: Any = None
    label: int | str = 0


# -- building dataclasses -------------------------------------------------------------------------


def test_build_nested_experiment_with_defaults() -> None:
    cfg = build_dataclass(ExperimentConfig, {k: v for k, v in BASE.items() if k != "eval"})
    assert cfg.env == EnvConfig(
        id="rlsuite/SOR-ShiftedLaplacian-v0", kwargs={"variance": "low", "n": 6}
    )
    assert cfg.env.num_envs == 1
    assert cfg.agent == AgentConfig(name="tsallis_inf", params={"learning_rate": 0.5})
    assert cfg.train == TrainConfig(total_steps=100, seed=3, checkpoint_every=50, log_every=10)
    assert cfg.eval == EvalConfig()
    assert cfg.eval.baselines == [] and cfg.eval.seeds == "1000:1010"


def test_every_supported_type_converts() -> None:
    params = validate_params(
        Params,
        {
            "learning_rate": 1,  # int accepted for float and converted
            "num_bins": 1e4,  # integral float accepted for int
            "greedy": True,
            "mode": "exact",
            "clip": 0.5,
            "layers": [{"width": 4}, {"width": 8, "activation": "tanh"}],
            "shape": [3, 4, 5],
            "pair": [1, "b"],
            "weights": {"a": 1, "b": 2.5},
            "extra": {"nested": {"x": [1, None]}},
            "anything": {"free": "form"},
            "label": "name",
        },
    )
    assert params.learning_rate == 1.0 and type(params.learning_rate) is float
    assert params.num_bins == 10000 and type(params.num_bins) is int
    assert params.layers == [Layer(4, "relu"), Layer(8, "tanh")]
    assert params.shape == (3, 4, 5) and params.pair == (1, "b")
    assert params.weights == {"a": 1.0, "b": 2.5} and type(params.weights["a"]) is float
    assert params.extra == {"nested": {"x": [1, None]}}
    assert params.anything == {"free": "form"} and params.label == "name"
    assert validate_params(Params, {"clip": None}).clip is None
    assert validate_params(Params, None) == Params()


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"num_bins": True}, r"agent\.params\.num_bins: expected int, got True \(bool\)"),
        ({"num_bins": 2.5}, r"agent\.params\.num_bins: expected int, got 2\.5 \(float\)"),
        ({"num_bins": "10"}, r"agent\.params\.num_bins: expected int, got '10' \(str\)"),
        (
            {"learning_rate": False},
            r"agent\.params\.learning_rate: expected float, got False \(bool\)",
        ),
        ({"greedy": 1}, r"agent\.params\.greedy: expected bool, got 1 \(int\)"),
        ({"greedy": "yes"}, r"agent\.params\.greedy: expected bool, got 'yes' \(str\)"),
        ({"clip": "big"}, r"agent\.params\.clip: expected float \| None, got 'big' \(str\)"),
        ({"shape": [1, "x"]}, r"agent\.params\.shape\[1\]: expected int, got 'x' \(str\)"),
        ({"shape": 3}, r"agent\.params\.shape: expected tuple\[int, \.\.\.\], got 3 \(int\)"),
        (
            {"pair": [1, "b", 2]},
            r"agent\.params\.pair: expected tuple\[int, str\] \(2 items\), got 3",
        ),
        ({"weights": {"a": "x"}}, r"agent\.params\.weights\.a: expected float, got 'x' \(str\)"),
        ({"weights": {1: 2.0}}, r"agent\.params\.weights: keys must be strings, got key 1 \(int\)"),
        (
            {"weights": [1]},
            r"agent\.params\.weights: expected dict\[str, float\], got \[1\] \(list\)",
        ),
        ({"label": 1.5}, r"agent\.params\.label: expected int \| str, got 1\.5 \(float\)"),
        (
            {"layers": [{"width": 4}, {"width": "w"}]},
            r"agent\.params\.layers\[1\]\.width: expected int",
        ),
        ({"layers": [{"width": 4, "widht": 5}]}, r"agent\.params\.layers\[0\]\.widht: unknown key"),
        ({"layers": [{}]}, r"agent\.params\.layers\[0\]\.width: required key missing"),
        (
            {"layers": [3]},
            r"agent\.params\.layers\[0\]: expected a mapping for Layer, got 3 \(int\)",
        ),
    ],
)
def test_wrong_types_name_key_value_and_expected_type(params: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        validate_params(Params, params)


def test_literal_lists_allowed_values() -> None:
    with pytest.raises(
        ConfigError,
        match=r"agent\.params\.mode: got 'slow' \(str\); allowed values: 'fast', 'exact'",
    ):
        validate_params(Params, {"mode": "slow"})
    with pytest.raises(
        ConfigError,
        match=r"layers\[0\]\.activation: got 'gelu' \(str\); allowed values: 'relu', 'tanh'",
    ):
        validate_params(Params, {"layers": [{"width": 1, "activation": "gelu"}]})


def test_literal_does_not_confuse_bool_and_int() -> None:
    @dataclasses.dataclass
    class Flags:
        level: Literal[0, 1, 2] = 0

    assert build_dataclass(Flags, {"level": 2}).level == 2
    with pytest.raises(ConfigError, match=r"level: got True \(bool\); allowed values: 0, 1, 2"):
        build_dataclass(Flags, {"level": True})


def test_unknown_key_names_dotted_key_allowed_keys_and_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        validate_params(Params, {"learning_rat": 0.1})
    message = str(info.value)
    assert message.startswith("agent.params.learning_rat: unknown key")
    assert "allowed keys: learning_rate, num_bins, greedy, mode" in message
    assert "did you mean 'learning_rate'?" in message


def test_unknown_top_level_and_section_keys() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^trian: unknown key; allowed keys: env, agent, train, eval, name "
        r"\(did you mean 'train'\?\)",
    ):
        build_dataclass(ExperimentConfig, {**BASE, "trian": {}})
    with pytest.raises(ConfigError, match=r"^train\.sed: unknown key.*did you mean 'seed'"):
        build_dataclass(ExperimentConfig, {**BASE, "train": {"total_steps": 5, "sed": 1}})
    with pytest.raises(ConfigError, match=r"^zzz: unknown key; allowed keys: env, agent") as info:
        build_dataclass(ExperimentConfig, {**BASE, "zzz": 1})
    assert "did you mean" not in str(info.value)


def test_missing_required_keys_are_named() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^train: required key missing \(ExperimentConfig needs a mapping for TrainConfig\)",
    ):
        build_dataclass(ExperimentConfig, {"env": BASE["env"], "agent": BASE["agent"]})
    with pytest.raises(
        ConfigError, match=r"^train\.total_steps: required key missing \(TrainConfig needs int\)"
    ):
        build_dataclass(ExperimentConfig, {**BASE, "train": {"seed": 1}})
    with pytest.raises(ConfigError, match=r"^env\.id: required key missing"):
        build_dataclass(ExperimentConfig, {**BASE, "env": {}})


def test_section_that_is_not_a_mapping() -> None:
    with pytest.raises(
        ConfigError, match=r"^train: expected a mapping for TrainConfig, got 5 \(int\)"
    ):
        build_dataclass(ExperimentConfig, {**BASE, "train": 5})
    with pytest.raises(
        ConfigError, match=r"the config: expected a mapping for ExperimentConfig, got \[1\]"
    ):
        build_dataclass(ExperimentConfig, [1])  # type: ignore[arg-type]


def test_where_prefix_and_non_string_keys() -> None:
    with pytest.raises(ConfigError, match=r"^my\.agent\.num_bins: expected int"):
        build_dataclass(Params, {"num_bins": "x"}, where="my.agent")
    with pytest.raises(
        ConfigError, match=r"agent\.params: keys must be strings, got key 3 \(int\)"
    ):
        validate_params(Params, {3: 1})


@pytest.mark.parametrize(
    ("section", "value", "pattern"),
    [
        ("train", {"total_steps": 0}, r"train\.total_steps: must be a positive integer, got 0"),
        (
            "train",
            {"total_steps": 5, "log_every": -1},
            r"train\.log_every: must be a positive integer, got -1",
        ),
        (
            "train",
            {"total_steps": 5, "checkpoint_every": 0},
            r"train\.checkpoint_every: must be a positive",
        ),
        (
            "train",
            {"total_steps": 5, "device": "gpu"},
            r"train\.device: got 'gpu'; allowed: 'cpu', 'cuda' or 'cuda:N'",
        ),
        ("train", {"total_steps": 5, "device": "cuda:x"}, r"train\.device: got 'cuda:x'"),
        ("env", {"id": "x", "num_envs": 0}, r"env\.num_envs: must be a positive integer, got 0"),
        ("env", {"id": ""}, r"env\.id: must be a non-empty gymnasium id"),
        ("agent", {"name": ""}, r"agent\.name: must be a non-empty agent name"),
        ("eval", {"seeds": "10-20"}, r"eval\.seeds: expected 'A:B'.*got '10-20'"),
        ("eval", {"seeds": "20:10"}, r"eval\.seeds: '20:10' is empty; 'A:B' needs A < B"),
        (
            "eval",
            {"episodes": 5, "seeds": "0:3"},
            r"eval\.episodes: 5 episodes need at least 5 seeds, but eval\.seeds '0:3' has 3",
        ),
        ("eval", {"episodes": 0}, r"eval\.episodes: must be a positive integer, got 0"),
    ],
)
def test_value_checks(section: str, value: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        build_dataclass(ExperimentConfig, {**BASE, section: value})


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12"])
def test_valid_devices(device: str) -> None:
    assert TrainConfig(total_steps=1, device=device).device == device


def test_parse_seed_range() -> None:
    assert parse_seed_range("1000:1010") == range(1000, 1010)
    assert parse_seed_range(" 0 : 1 ") == range(0, 1)
    for bad in ["1000", "a:b", "-5:3", "1:2:3", "", "1.5:3"]:
        with pytest.raises(ConfigError, match=r"seed range: expected 'A:B'"):
            parse_seed_range(bad)
    with pytest.raises(ConfigError, match=r"seed range: '5:5' is empty; 'A:B' needs A < B"):
        parse_seed_range("5:5")
    with pytest.raises(ConfigError, match=r"--seeds: expected a string 'A:B'.*got 5 \(int\)"):
        parse_seed_range(5, where="--seeds")  # type: ignore[arg-type]


def test_instances_are_accepted_where_dataclasses_are_expected() -> None:
    env = EnvConfig(id="x")
    cfg = build_dataclass(ExperimentConfig, {**BASE, "env": env})
    assert cfg.env is env
    assert build_dataclass(EnvConfig, env) is env


def test_unsupported_field_type_is_a_programming_error() -> None:
    @dataclasses.dataclass
    class Odd:
        when: complex = 0j

    with pytest.raises(TypeError, match="when: config fields of type complex are not supported"):
        build_dataclass(Odd, {"when": 1j})


# -- overrides ------------------------------------------------------------------------------------


def test_overrides_parse_values_nest_and_create_keys() -> None:
    out = apply_overrides(
        BASE,
        [
            "train.total_steps=3",
            "agent.params.layers=[1, 2]",
            "train.device=cuda:1",
            "agent.params.new.deep.key=0.5",
            "eval.seeds=10:20",  # a string, not YAML 1.1's base-60 integer 620
            "agent.params.lr=3e-4",  # a float, not the string '3e-4'
            "name=a=b",  # only the first '=' separates
            "agent.params.clip=",  # empty value is None
            "agent.params.flag=true",
        ],
    )
    assert out["train"]["total_steps"] == 3
    assert out["agent"]["params"]["layers"] == [1, 2]
    assert out["train"]["device"] == "cuda:1"
    assert out["agent"]["params"]["new"] == {"deep": {"key": 0.5}}
    assert out["eval"]["seeds"] == "10:20"
    assert out["agent"]["params"]["lr"] == 3e-4
    assert out["name"] == "a=b"
    assert out["agent"]["params"]["clip"] is None
    assert out["agent"]["params"]["flag"] is True


def test_overrides_do_not_mutate_input() -> None:
    before = yaml.safe_dump(BASE)
    out = apply_overrides(BASE, ["agent.params.learning_rate=9", "env.kwargs.n=7"])
    assert yaml.safe_dump(BASE) == before
    assert out["env"]["kwargs"]["n"] == 7 and BASE["env"]["kwargs"]["n"] == 6
    assert apply_overrides({}, []) == {}


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("train.total_steps", r"override 'train\.total_steps': expected 'dotted\.key=value'"),
        (
            "name.first=x",
            r"override 'name\.first=x': name is 'test' \(str\), not a mapping, "
            r"so it has no key 'first'",
        ),
        ("train.seed.x=1", r"train\.seed is 3 \(int\), not a mapping"),
        ("a..b=1", r"override 'a\.\.b=1': 'a\.\.b' is not a dotted key"),
        ("=1", r"override '=1': '' is not a dotted key"),
        ("x=[1, 2", r"override 'x=\[1, 2': the value '\[1, 2' is not valid YAML"),
    ],
)
def test_override_errors(item: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        apply_overrides(BASE, [item])


def test_overrides_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match="must be a list of 'key=value' strings"):
        apply_overrides(BASE, "train.seed=1")


# -- files ----------------------------------------------------------------------------------------


def test_load_config_with_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", BASE)
    cfg = load_config(path, ["train.total_steps=7", "train.seed=1", "agent.params.extra=[1]"])
    assert cfg.train.total_steps == 7 and cfg.train.seed == 1
    assert cfg.agent.params == {"learning_rate": 0.5, "extra": [1]}
    assert cfg.eval.baselines == ["best_fixed"] and cfg.name == "test"


def test_load_config_reads_yaml12_numbers(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "env: {id: x}\nagent: {name: a, params: {lr: 3e-4}}\n"
        "train: {total_steps: 1e4}\neval: {seeds: 10:20, episodes: 2}\n"
    )
    cfg = load_config(path)
    assert cfg.train.total_steps == 10000 and type(cfg.train.total_steps) is int
    assert cfg.agent.params["lr"] == 3e-4
    assert cfg.eval.seeds == "10:20"


def test_shipped_config_loads() -> None:
    shipped = Path(__file__).resolve().parents[2] / "configs" / "sor" / "tsallis_inf.yaml"
    cfg = load_config(shipped)
    assert cfg.agent.name == "tsallis_inf" and cfg.train.total_steps > 0


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"config file '.*nope\.yaml' not found"):
        load_config(missing)
    with pytest.raises(ConfigError, match=r"is not a file"):
        load_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  id: x\n  kwargs: [1, 2\nagent: {}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: not valid YAML"):
        load_config(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("env: {id: x}\nagent: {name: a}\ntrain:\n  seed: 1\n  seed: 2\n")
    with pytest.raises(
        ConfigError,
        match=r"dup\.yaml:5:3: not valid YAML: .*duplicate key 'seed' \(first given on line 4\)",
    ):
        load_config(dup)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(
        ConfigError, match=r"empty\.yaml' is empty; expected a mapping with keys env, agent, train"
    ):
        load_config(empty)
    listed = write(tmp_path / "list.yaml", [1, 2])
    with pytest.raises(
        ConfigError, match=r"list\.yaml': expected a mapping .* at the top level, got list"
    ):
        load_config(listed)
    typo = write(tmp_path / "typo.yaml", {**BASE, "agent": {"name": "a", "parms": {}}})
    with pytest.raises(
        ConfigError,
        match=r"typo\.yaml: agent\.parms: unknown key; allowed keys: name, params "
        r"\(did you mean 'params'\?\)",
    ):
        load_config(typo)
    wrong = write(tmp_path / "wrong.yaml", BASE)
    with pytest.raises(
        ConfigError, match=r"wrong\.yaml: train\.total_steps: expected int, got 'many' \(str\)"
    ):
        load_config(wrong, ["train.total_steps=many"])


# -- round trips ----------------------------------------------------------------------------------


def test_dump_load_round_trip(tmp_path: Path) -> None:
    cfg = build_dataclass(
        ExperimentConfig,
        {
            **BASE,
            "env": {
                "id": "e",
                "kwargs": {"s": "1e4", "t": "10:20", "u": "yes", "big": 2**70, "f": 1e-20},
            },
            "agent": {"name": "a", "params": {"inf": math.inf, "nested": {"x": [1, {"y": None}]}}},
        },
    )
    path = tmp_path / "out.yaml"
    dump_config(cfg, path)
    assert load_config(path) == cfg
    assert load_config(path).env.kwargs["s"] == "1e4"  # a string that looks like a number stays one


def test_dataclass_round_trip_with_tuples_and_nested_lists() -> None:
    params = Params(shape=(4, 5), pair=(2, "z"), layers=[Layer(3, "tanh")], weights={"a": 0.5})
    data = config_to_dict(params)
    assert data["shape"] == [4, 5] and data["layers"] == [{"width": 3, "activation": "tanh"}]
    assert validate_params(Params, yaml_load(yaml_dump(data))) == params


def test_config_to_dict_is_plain_data() -> None:
    cfg = ExperimentConfig(
        env=EnvConfig(id="e", kwargs={"n": np.int64(3), "x": np.float32(0.5)}),
        agent=AgentConfig(name="a"),
        train=TrainConfig(total_steps=5),
    )
    data = config_to_dict(cfg)
    assert data["env"]["kwargs"] == {"n": 3, "x": 0.5} and type(data["env"]["kwargs"]["n"]) is int
    assert data["eval"] == {"episodes": 10, "seeds": "1000:1010", "baselines": [], "env_kwargs": {}}
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    with pytest.raises(ConfigError, match=r"env\.kwargs\.bad: .*object.* cannot be written"):
        config_to_dict(dataclasses.replace(cfg, env=EnvConfig(id="e", kwargs={"bad": object()})))
    with pytest.raises(TypeError, match="needs a dataclass instance or a mapping"):
        config_to_dict(3)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_shipped_config_loads(path: Path) -> None:
    from rlsuite.registry import AGENTS, ENVS

    config = load_config(path)
    assert config.env.id in ENVS
    assert config.agent.name in AGENTS
    assert config.train.total_steps > 0
