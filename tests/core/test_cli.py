"""The command line end to end: list, train, eval, bench, resume after a kill, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from rlsuite.agents.base import Agent

from rlsuite.cli import main
from rlsuite.config import ConfigError, EnvConfig
from rlsuite.registry import AGENTS, ENVS, AgentEntry
from rlsuite.runs import RunDir, load_checkpoint
from rlsuite.training import make_env

CONFIG = {
    "name": "cli-test",
    "env": {
        "id": "rlsuite/SOR-ShiftedLaplacian-v0",
        "kwargs": {"variance": "low", "n": 6, "sequence_length": 400},
    },
    "agent": {"name": "tsallis_inf", "params": {}},
    "train": {"total_steps": 120, "seed": 3, "checkpoint_every": 40, "log_every": 20},
    "eval": {
        "episodes": 3,
        "seeds": "100:103",
        "baselines": ["fixed:1.5"],
        "env_kwargs": {"sequence_length": 4},
    },
}


def write_config(path: Path, **changes: object) -> Path:
    config = json.loads(json.dumps(CONFIG))
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))
    return path


def test_list_names_every_env_and_agent(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*ENVS, *AGENTS]:
        assert name in out


def test_train_then_eval(tmp_path, capsys) -> None:
    config = write_config(tmp_path / "c.yaml")
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(config),
                "--run-dir",
                str(run_dir),
                "--no-progress",
                "--set",
                "train.total_steps=80",
            ]
        )
        == 0
    )
    run = RunDir.open(run_dir)
    assert run.config["train"]["total_steps"] == 80
    rows = run.read_metrics()
    assert [r["step"] for r in rows] == [20, 40, 60, 80]
    assert all(r["iterations"] > 0 for r in rows)
    assert list((run_dir / "tb").iterdir()), "no TensorBoard events"
    _, meta = load_checkpoint(run.latest_checkpoint())
    assert meta["step"] == 80 and meta["agent"] == "tsallis_inf"
    out_json = tmp_path / "eval.json"
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                str(run_dir),
                "--json",
                str(out_json),
                "--baseline",
                "fixed:1.5",
                "--baseline",
                "best_fixed",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert (
        "tsallis_inf" in table
        and "best_fixed" in table
        and "95% CI" in table
        and "reward/step" in table
    )
    results = {r["policy"]: r for r in json.loads(out_json.read_text())}
    assert set(results) == {"tsallis_inf", "fixed:1.5", "best_fixed"}
    assert results["best_fixed"]["mean_return"] >= results["fixed:1.5"]["mean_return"]
    assert all(
        r["episodes"] == 3 and r["ci95_low"] <= r["mean_return"] <= r["ci95_high"]
        for r in results.values()
    )


def test_eval_refuses_training_seeds(tmp_path, capsys) -> None:
    config = write_config(tmp_path / "c.yaml", train__total_steps=20)
    main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert main(["eval", str(tmp_path / "run"), "--seeds", "2:6"]) == 2
    assert "were used in training" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"agent__params": {"learning_rat": 1.0}}, "agent.params.learning_rat"),
        ({"train__total_steps": "many"}, "train.total_steps"),
        ({"env__id": "rlsuite/Nope-v0"}, "unknown environment"),
        ({"agent__name": "nope"}, "unknown agent"),
        ({"env__kwargs": {"variance": "medium"}}, "variance"),
    ],
)
def test_bad_config_fails_before_any_work(tmp_path, capsys, change, message) -> None:
    config = write_config(tmp_path / "c.yaml", **change)
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bench_reports_a_ratio(capsys) -> None:
    code = main(
        [
            "bench",
            "rlsuite/SOR-ShiftedLaplacian-v0",
            "--num-envs",
            "1,8",
            "--min-seconds",
            "0.2",
            "--set",
            "n=6",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["num_envs"] for r in result["results"]] == [1, 8]
    assert all(r["speedup"] > 0 for r in result["results"])


def _final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], list[dict]]:
    run = RunDir.open(run_dir)
    tensors, _ = load_checkpoint(run.latest_checkpoint())
    rows = [{k: v for k, v in r.items() if k != "time"} for r in run.read_metrics()]
    return tensors, rows


def test_killed_and_resumed_run_ends_identical(tmp_path) -> None:
    config = write_config(tmp_path / "c.yaml", train__total_steps=400, train__checkpoint_every=50)
    main(["train", str(config), "--run-dir", str(tmp_path / "whole"), "--no-progress"])
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlsuite.cli",
            "train",
            str(config),
            "--run-dir",
            str(killed),
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((killed / "checkpoints").glob("step_*.pt")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial, _ = _final_state(killed)
    assert int(partial["agent/num_timesteps"]) < 400, "the run finished before it was killed"
    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    whole_tensors, whole_rows = _final_state(tmp_path / "whole")
    resumed_tensors, resumed_rows = _final_state(killed)
    assert whole_tensors.keys() == resumed_tensors.keys()
    for key in whole_tensors:
        torch.testing.assert_close(
            resumed_tensors[key], whole_tensors[key], rtol=0, atol=0, msg=key
        )
    assert resumed_rows == whole_rows


def test_eval_a_checkpoint_file_and_refuse_a_corrupt_one(tmp_path, capsys) -> None:
    config = write_config(tmp_path / "c.yaml", train__total_steps=20)
    main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    checkpoint = RunDir.open(tmp_path / "run").latest_checkpoint()
    capsys.readouterr()
    assert main(["eval", str(checkpoint), "--episodes", "2"]) == 0
    assert "tsallis_inf" in capsys.readouterr().out
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(checkpoint.read_bytes()[:100])
    assert main(["eval", str(corrupt)]) == 2
    assert "corrupt.pt" in capsys.readouterr().err


def test_three_body_eval_reports_metric_quartiles_and_writes_the_plot(tmp_path, capsys) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        env__id="rlsuite/ThreeBody-v0",
        env__kwargs={"max_steps": 3},
        train__total_steps=12,
        train__checkpoint_every=12,
        train__log_every=6,
        eval__baselines=["fixed:9", "fixed:8"],
        eval__env_kwargs={"max_steps": 2},
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    assert "energy_error" in out and "total_force_evaluations" in out
    assert (run / "eval" / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
    rows = json.loads((tmp_path / "e.json").read_text())
    assert [r["policy"] for r in rows] == ["tsallis_inf", "fixed:9 (η=0.1)", "fixed:8 (η=0.0464)"]
    q25, median, q75 = rows[1]["metrics"]["total_force_evaluations"]
    assert q25 <= median <= q75 and median >= 2  # ≥ one force evaluation per step
    # the same agent transferred to the leapfrog integrator, for this evaluation only
    assert (
        main(
            [
                "eval",
                str(run),
                "--env-kwarg",
                "integrator=leapfrog",
                "--json",
                str(tmp_path / "l.json"),
            ]
        )
        == 0
    )
    leapfrog = json.loads((tmp_path / "l.json").read_text())
    assert leapfrog[1]["metrics"] != rows[1]["metrics"]
    assert main(["eval", str(run), "--env-kwarg", "integrator=rk4"]) == 2
    assert "unknown integrator 'rk4'" in capsys.readouterr().err


def test_plot_is_refused_for_a_family_without_one(tmp_path, capsys) -> None:
    config = write_config(tmp_path / "c.yaml", train__total_steps=20)
    main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--plot", str(tmp_path / "p.png")]) == 2
    assert "has no evaluation plot" in capsys.readouterr().err


# -- --agent-param and agent episode metrics ---------------------------------------------------


@dataclass
class FixedActionConfig:
    """Hyperparameters of :class:`FixedActionAgent`."""

    action: int = 0  # the index into the SOR env's omega grid played at every step


class FixedActionAgent(Agent):
    """Plays ``config.action`` always; reports how often ``predict`` saw each env per episode."""

    name = "test.fixed_action"
    Config = FixedActionConfig
    episode_metrics = ("predict_calls",)
    predict_batches = 0  # every predict call of any instance, to see that none happened

    def __init__(self, env, config=None, *, seed: int = 0) -> None:
        super().__init__(env, config, seed=seed)
        self.calls = torch.zeros(env.num_envs, dtype=torch.int64)

    def learn(self, total_steps: int, callback=None) -> FixedActionAgent:
        return self

    def predict(self, obs, deterministic: bool = True):
        type(self).predict_batches += 1
        self.calls += 1
        return torch.full((obs.shape[0],), self.config.action, dtype=torch.int64)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state) -> None:
        pass

    def pop_episode_metrics(self, env_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        values = self.calls[env_ids].clone()
        self.calls[env_ids] = 0
        return {"predict_calls": values}


SOR_EVAL_KWARGS = {"variance": "low", "n": 6, "sequence_length": 4}


@pytest.fixture
def fixed_action_checkpoint(tmp_path, monkeypatch) -> Path:
    """A checkpoint of :class:`FixedActionAgent` (action 0), registered for this test only."""
    name = FixedActionAgent.name
    monkeypatch.setitem(AGENTS, name, AgentEntry(name, f"{__name__}:FixedActionAgent", "test"))
    monkeypatch.setattr(FixedActionAgent, "predict_batches", 0)
    env = make_env(EnvConfig("rlsuite/SOR-ShiftedLaplacian-v0", SOR_EVAL_KWARGS))
    return FixedActionAgent(env, {"action": 0}).save(tmp_path / "fixed.pt")


def test_agent_param_changes_the_agent_and_the_report_names_it(
    fixed_action_checkpoint, tmp_path, capsys
) -> None:
    grid = make_env(EnvConfig("rlsuite/SOR-ShiftedLaplacian-v0", SOR_EVAL_KWARGS)).omega_grid
    omega0, omega5 = f"fixed:{float(grid[0])}", f"fixed:{float(grid[5])}"
    out_json = tmp_path / "e.json"
    argv = ["eval", str(fixed_action_checkpoint), "--episodes", "3", "--json", str(out_json)]
    assert (
        main([*argv, "--agent-param", "action=5", "--baseline", omega5, "--baseline", omega0]) == 0
    )
    table = capsys.readouterr().out
    assert "test.fixed_action with --agent-param action=5" in table
    assert "predict_calls median [q25, q75]" in table and "4 [4, 4]" in table
    agent, fixed5, fixed0 = json.loads(out_json.read_text())
    assert agent["agent_params"] == {"action": 5} and fixed5["agent_params"] == {}
    # the agent now plays omega_grid[5] on the same episodes as the fixed:omega_grid[5] baseline
    assert agent["mean_return"] == pytest.approx(fixed5["mean_return"], rel=1e-12)
    assert agent["mean_return"] != pytest.approx(fixed0["mean_return"])
    # one predict call per step of each 4-step episode, popped when the episode ends
    assert agent["metrics"] == {"predict_calls": [4.0, 4.0, 4.0]}
    assert "predict_calls" not in fixed5["metrics"]
    # without the flag the agent plays its saved action 0, and nothing is reported as overridden
    assert main([*argv, "--baseline", omega0]) == 0
    agent, fixed0_again = json.loads(out_json.read_text())
    assert agent["agent_params"] == {}
    assert agent["mean_return"] == pytest.approx(fixed0_again["mean_return"], rel=1e-12)


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (
            "acton=5",
            "--agent-param acton: unknown key; allowed keys: action (did you mean 'action'?)",
        ),
        ("action=fast", "--agent-param action: expected int, got 'fast' (str)"),
        ("action.x=1", "--agent-param action: expected int, got {'x': 1} (dict)"),
    ],
)
def test_bad_agent_param_fails_before_any_episode(
    fixed_action_checkpoint, tmp_path, capsys, param, message
) -> None:
    out_json = tmp_path / "e.json"
    argv = ["eval", str(fixed_action_checkpoint), "--json", str(out_json), "--agent-param", param]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert FixedActionAgent.predict_batches == 0, "an episode was played"
    assert not out_json.exists()


def test_agent_load_applies_config_overrides(fixed_action_checkpoint) -> None:
    env = make_env(EnvConfig("rlsuite/SOR-ShiftedLaplacian-v0", SOR_EVAL_KWARGS))
    assert FixedActionAgent.load(fixed_action_checkpoint, env).config.action == 0
    agent = FixedActionAgent.load(fixed_action_checkpoint, env, config_overrides={"action": 3})
    assert agent.config == FixedActionConfig(action=3)
    with pytest.raises(ConfigError, match=r"--agent-param action: expected int, got 1\.5"):
        FixedActionAgent.load(fixed_action_checkpoint, env, config_overrides={"action": 1.5})


def test_agent_param_merges_into_an_sb3_agents_kwargs(tmp_path, capsys) -> None:
    pytest.importorskip("stable_baselines3")
    from rlsuite.integrations.sb3 import SB3PPO

    saved = {"policy": "MlpPolicy", "kwargs": {"n_steps": 8, "batch_size": 8}}
    merged = SB3PPO.config_with_overrides(saved, {"kwargs": {"batch_size": 4}})
    assert merged.kwargs == {"n_steps": 8, "batch_size": 4} and merged.policy == "MlpPolicy"
    with pytest.raises(ConfigError, match="--agent-param polcy: unknown key; allowed keys: "):
        SB3PPO.config_with_overrides(saved, {"polcy": "CnnPolicy"})
    config = write_config(
        tmp_path / "c.yaml",
        agent={"name": "sb3.PPO", "params": saved},
        train__total_steps=8,
        train__checkpoint_every=8,
        train__log_every=8,
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    out_json = tmp_path / "e.json"
    argv = ["eval", str(tmp_path / "run"), "--episodes", "2", "--json", str(out_json)]
    assert main([*argv, "--agent-param", "kwargs.batch_size=4"]) == 0
    assert json.loads(out_json.read_text())[0]["agent_params"] == {"kwargs.batch_size": 4}


# -- rlsuite train --address ---------------------------------------------------------------------


class FakeRay(types.ModuleType):
    """Stands in for the ``ray`` module (not installed here): records ``init`` calls."""

    def __init__(self) -> None:
        super().__init__("ray")
        self.calls: list[dict[str, object]] = []

    def is_initialized(self) -> bool:
        return bool(self.calls)

    def init(self, **kwargs: object) -> None:
        self.calls.append(kwargs)


class FakeRayAgent(FixedActionAgent):
    """Starts its own Ray unless one is running, as the ``rllib.*`` agents do."""

    name = "test.fake_ray"
    uses_ray = True

    def __init__(self, env, config=None, *, seed: int = 0) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        super().__init__(env, config, seed=seed)


@pytest.fixture
def fake_ray(monkeypatch) -> FakeRay:
    ray = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    name = FakeRayAgent.name
    monkeypatch.setitem(AGENTS, name, AgentEntry(name, f"{__name__}:FakeRayAgent", "test", "ray"))
    return ray


def _train(tmp_path: Path, agent: str, *flags: str) -> int:
    config = write_config(tmp_path / "c.yaml", agent={"name": agent, "params": {}})
    argv = ["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]
    return main([*argv, "--set", "train.total_steps=20", *flags])


def test_train_address_connects_a_ray_agent_to_the_cluster(tmp_path, fake_ray) -> None:
    assert _train(tmp_path, FakeRayAgent.name, "--address", "10.0.0.7:6379") == 0
    # the address reached ray.init before the agent was built, so it did not start its own
    assert fake_ray.calls == [{"address": "10.0.0.7:6379"}]
    assert RunDir.open(tmp_path / "run").latest_checkpoint() is not None


def test_train_reads_ray_address_from_the_environment(tmp_path, fake_ray, monkeypatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert _train(tmp_path, FakeRayAgent.name) == 0
    assert fake_ray.calls == [{"address": "ray://head:10001"}]


def test_train_without_an_address_leaves_ray_to_the_agent(tmp_path, fake_ray) -> None:
    assert _train(tmp_path, FakeRayAgent.name) == 0
    assert fake_ray.calls == [{"include_dashboard": False}]  # the agent's embedded instance


def test_train_address_with_an_agent_without_ray_is_an_error(
    tmp_path, fake_ray, capsys, monkeypatch
) -> None:
    assert _train(tmp_path, "tsallis_inf", "--address", "10.0.0.7:6379") == 2
    err = capsys.readouterr().err
    assert "--address 10.0.0.7:6379: agent 'tsallis_inf' does not use Ray" in err
    assert not (tmp_path / "run").exists() and fake_ray.calls == []
    # RAY_ADDRESS is meant for Ray agents; other agents train as usual and never touch Ray
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.7:6379")
    assert _train(tmp_path, "tsallis_inf") == 0
    assert fake_ray.calls == []


def test_train_address_without_ray_installed_names_the_extra(tmp_path, fake_ray, capsys) -> None:
    sys.modules["ray"] = None  # type: ignore[assignment]  # import ray raises (monkeypatched)
    assert _train(tmp_path, FakeRayAgent.name, "--address", "10.0.0.7:6379") == 2
    assert "pip install 'rlsuite[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.ray
def test_rllib_agents_declare_that_they_use_ray() -> None:
    pytest.importorskip("ray")
    from rlsuite.integrations.rllib import RLlibDQN, RLlibPPO

    assert RLlibPPO.uses_ray and RLlibDQN.uses_ray


def test_an_eval_with_env_kwargs_writes_its_own_plot(tmp_path) -> None:
    """The three-body plot of an evaluation under --env-kwarg overrides does not overwrite the
    plain evaluation's (it is named after the overrides)."""
    pytest.importorskip("stable_baselines3")
    config = tmp_path / "tb.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "env": {"id": "rlsuite/ThreeBody-v0", "num_envs": 2, "kwargs": {"max_steps": 2}},
                "agent": {"name": "sb3.DQN", "params": {"kwargs": {"learning_starts": 4}}},
                "train": {"total_steps": 8, "checkpoint_every": 8, "log_every": 4},
                "eval": {"episodes": 2, "seeds": "1000:1002"},
            }
        )
    )
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--no-progress"]) == 0
    assert main(["eval", str(run), "--baseline", "fixed:9"]) == 0
    assert (
        main(["eval", str(run), "--baseline", "fixed:9", "--env-kwarg", "integrator=leapfrog"]) == 0
    )
    plots = sorted(p.name for p in (run / "eval").glob("*.png"))
    assert plots == ["evaluation-integrator=leapfrog.png", "evaluation.png"]
