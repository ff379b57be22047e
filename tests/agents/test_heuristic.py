"""The coRMAB baselines as agents: one name per baseline, the agent protocol end to end, a
resumed run that continues the same random actions, and `rlsuite train` + `rlsuite eval`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rlsuite.agents.heuristic import CoRMABHeuristic
from rlsuite.envs.rmab import baselines
from rlsuite.envs.rmab.vector import CoRMABVectorEnv

from rlsuite.cli import main
from rlsuite.config import EnvConfig
from rlsuite.registry import AGENTS, get_agent_class
from rlsuite.training import make_env

pytest.importorskip("highspy")


def test_every_baseline_is_an_agent_name() -> None:
    for name in baselines.NAMES:
        cls = get_agent_class(f"rmab.{name}")
        assert issubclass(cls, CoRMABHeuristic) and cls.baseline == name
        assert cls.name == f"rmab.{name}" and f"rmab.{name}" in AGENTS


def test_learn_save_load_predict(tmp_path: Path) -> None:
    env = CoRMABVectorEnv(3, family="capacity")
    agent = get_agent_class("rmab.random")(env, seed=5)
    rewards: list[float] = []
    agent.learn(60, callback=lambda _, m: rewards.append(m["reward"]))
    assert agent.num_timesteps == 60 and len(rewards) == 20 and min(rewards) > 0
    path = agent.save(tmp_path / "random.pt")
    loaded = get_agent_class("rmab.random").load(path, CoRMABVectorEnv(3, family="capacity"))
    obs = agent._obs
    # the generator was restored: the next random actions are the same
    np.testing.assert_array_equal(agent.predict(obs).numpy(), loaded.predict(obs).numpy())
    assert env.is_feasible(loaded.predict(obs)[0].numpy(), 0)


def test_resumed_heuristic_continues_the_same_actions() -> None:
    def run(split: bool) -> list[float]:
        env = CoRMABVectorEnv(2, family="scheduling", instance_seed=None)
        agent = get_agent_class("rmab.sampling")(env, seed=1)
        rewards: list[float] = []
        agent.learn(20, callback=lambda _, m: rewards.append(m["reward"]))
        if split:
            state, env_state = agent.checkpoint_tensors(), env.state_dict()
            env = CoRMABVectorEnv(2, family="scheduling", instance_seed=None)
            env.load_state_dict(env_state)
            agent = get_agent_class("rmab.sampling")(env, seed=1)
            agent.restore(state)
        agent.learn(30, callback=lambda _, m: rewards.append(m.get("reward", 0.0)))
        return rewards

    assert run(split=True) == run(split=False)


def test_heuristics_refuse_other_envs() -> None:
    env = make_env(EnvConfig(id="rlsuite/SOR-ShiftedLaplacian-v0", kwargs={"n": 6}), num_envs=1)
    with pytest.raises(TypeError, match="CoRMAB"):
        get_agent_class("rmab.greedy")(env)


def test_train_and_eval_a_heuristic_from_its_config(tmp_path: Path, capsys) -> None:
    config = yaml.safe_load(Path("configs/rmab/greedy.yaml").read_text())
    config["train"].update(total_steps=16, checkpoint_every=8, log_every=8)
    config["eval"].update(episodes=4, seeds="1000:1004", baselines=["random", "greedy"])
    path = tmp_path / "greedy.yaml"
    path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    assert main(["train", str(path), "--run-dir", str(run_dir), "--no-progress"]) == 0
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics and all(row["reward"] > 0 for row in metrics)
    out_json = tmp_path / "eval.json"
    assert main(["eval", str(run_dir), "--json", str(out_json)]) == 0
    rows = {r["policy"]: r for r in json.loads(out_json.read_text())}
    # the agent is the greedy baseline: the same policy on the same episodes, the same returns
    assert rows["rmab.greedy"]["mean_return"] == pytest.approx(
        rows["greedy"]["mean_return"], abs=1e-9
    )
    assert rows["rmab.greedy"]["mean_return"] > rows["random"]["mean_return"]
    assert "rmab.greedy" in capsys.readouterr().out
