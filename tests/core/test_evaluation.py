"""``rlsuite.evaluation``: episode metrics at each episode's last step, their quartiles in the
report (table and JSON), and the family plot hook."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsuite.evaluation import (
    EpisodeResults,
    EvalRow,
    _row,
    checkpoint_env_id,
    has_plot,
    print_table,
    run_agent_episodes,
    write_json,
    write_plot,
)
from rlsuite.runs import save_checkpoint
from rlsuite.vector import BatchedVectorEnv

SOR = "rlsuite/SOR-ShiftedLaplacian-v0"


class CountingEnv(BatchedVectorEnv):
    """Env ``i`` lasts ``1 + seed % 4`` steps; step ``t`` (from 1) rewards ``t`` and reports
    ``cost = 100·seed + t``. Odd lengths terminate, even ones truncate."""

    episode_metrics = ("cost",)

    def __init__(self, num_envs: int) -> None:
        super().__init__(num_envs)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)
        self.single_action_space = gym.spaces.Discrete(2)
        self._finish_spaces()
        self.t = torch.zeros(num_envs, dtype=torch.int64)
        self.length = torch.ones(num_envs, dtype=torch.int64)

    def _reset_envs(self, ids: torch.Tensor) -> None:
        self.t[ids] = 0
        self.length[ids] = 1 + self.env_seeds[ids] % 4

    def _observe(self) -> torch.Tensor:
        return self.t.to(torch.float64).unsqueeze(1)

    def _step_envs(self, actions: torch.Tensor):
        self.t += 1
        done = self.t >= self.length
        odd = self.length % 2 == 1
        cost = (100 * self.env_seeds + self.t).to(torch.float64)
        return self.t.to(torch.float64), done & odd, done & ~odd, {"cost": cost}


class NoMetricsEnv(CountingEnv):
    episode_metrics = ()


class Zeros:
    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        assert deterministic
        return torch.zeros(obs.shape[0], dtype=torch.int64)


SEEDS = [4, 1, 6, 3, 7]  # lengths 1, 2, 3, 4, 4


def test_metrics_are_recorded_at_each_episodes_last_step() -> None:
    results = run_agent_episodes(Zeros(), CountingEnv(len(SEEDS)), SEEDS)
    assert isinstance(results, EpisodeResults)
    lengths = np.array([1, 2, 3, 4, 4])
    np.testing.assert_array_equal(results.lengths, lengths)
    np.testing.assert_array_equal(results.returns, lengths * (lengths + 1) / 2)
    assert set(results.metrics) == {"cost"}
    assert results.metrics["cost"].dtype == np.float64
    np.testing.assert_array_equal(results.metrics["cost"], [401.0, 102.0, 603.0, 304.0, 704.0])


def test_an_env_without_episode_metrics_reports_none() -> None:
    results = run_agent_episodes(Zeros(), NoMetricsEnv(2), [0, 1])
    assert results.metrics == {}
    np.testing.assert_array_equal(results.lengths, [1, 2])


def test_quartiles_table_and_json(tmp_path, capsys) -> None:
    results = run_agent_episodes(Zeros(), CountingEnv(len(SEEDS)), SEEDS)
    row = _row("zeros", results)
    expected = np.percentile(results.metrics["cost"], [25, 50, 75])
    assert row.metrics["cost"] == tuple(float(q) for q in expected) == (304.0, 401.0, 603.0)
    assert row.episodes == 5 and row.mean_episode_length == 2.8
    plain = EvalRow("plain", 5, -1.0, -2.0, 0.0, 2.0)  # positional, without metrics
    assert plain.metrics == {}

    diverged = EvalRow("diverged", 1, -1.0, -1.0, -1.0, 1.0, {"cost": (np.nan,) * 3})
    print_table([row, plain, diverged])
    table = capsys.readouterr().out  # brackets are text, not rich markup
    assert "cost median [q25, q75]" in table and "401 [304, 603]" in table
    assert "nan [nan, nan]" in table

    write_json([row, plain], tmp_path / "e.json")
    data = json.loads((tmp_path / "e.json").read_text())
    assert data[0]["metrics"] == {"cost": [304.0, 401.0, 603.0]}
    assert data[1]["metrics"] == {}


def test_sor_has_no_plot_and_checkpoint_env_id(tmp_path) -> None:
    assert not has_plot(SOR)
    assert write_plot(SOR, [], tmp_path / "p.png") is None
    assert not (tmp_path / "p.png").exists()
    checkpoint = save_checkpoint(tmp_path / "c.pt", {}, {"env_id": SOR})
    assert checkpoint_env_id(checkpoint) == SOR


class CountingAgent:
    """Plays action 0 and reports, per episode, how many times ``predict`` saw that env."""

    episode_metrics = ("predict_calls",)

    def __init__(self, num_envs: int) -> None:
        self.calls = torch.full((num_envs,), 7.0, dtype=torch.float64)  # stale: popped first

    def predict(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        self.calls += 1
        return torch.zeros(obs.shape[0], dtype=torch.int64)

    def pop_episode_metrics(self, env_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        values = self.calls[env_ids].clone()
        self.calls[env_ids] = 0
        return {"predict_calls": values}


def test_agent_episode_metrics_are_popped_when_each_episode_ends(tmp_path, capsys) -> None:
    results = run_agent_episodes(CountingAgent(len(SEEDS)), CountingEnv(len(SEEDS)), SEEDS)
    assert set(results.metrics) == {"cost", "predict_calls"}
    np.testing.assert_array_equal(results.metrics["predict_calls"], [1.0, 2.0, 3.0, 4.0, 4.0])
    np.testing.assert_array_equal(results.metrics["cost"], [401.0, 102.0, 603.0, 304.0, 704.0])
    row = _row("counting", results)
    assert row.metrics["predict_calls"] == (2.0, 3.0, 4.0)
    print_table([row])
    assert "predict_calls median [q25, q75]" in capsys.readouterr().out
    write_json([row], tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text())[0]["metrics"]["predict_calls"] == [
        2.0,
        3.0,
        4.0,
    ]


def test_agent_episode_metrics_are_checked() -> None:
    class Clash(CountingAgent):
        episode_metrics = ("cost",)

    class WrongKeys(CountingAgent):
        episode_metrics = ("predict_calls", "nodes")

    class WrongShape(CountingAgent):
        def pop_episode_metrics(self, env_ids: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"predict_calls": torch.zeros(len(env_ids) + 1)}

    with pytest.raises(ValueError, match=r"same names as the env's episode_metrics \['cost'\]"):
        run_agent_episodes(Clash(2), CountingEnv(2), [0, 1])
    with pytest.raises(ValueError, match=r"returned the keys \['predict_calls'\].*\['nodes'"):
        run_agent_episodes(WrongKeys(2), CountingEnv(2), [0, 1])
    with pytest.raises(ValueError, match=r"one value per env id, \(2,\)"):
        run_agent_episodes(WrongShape(2), CountingEnv(2), [0, 1])


def test_agent_params_are_reported_in_the_table_and_json(tmp_path, capsys) -> None:
    results = run_agent_episodes(Zeros(), NoMetricsEnv(2), [0, 1])
    row = _row("sb3.PPO", results, {"kwargs.batch_size": 64, "policy": "MlpPolicy"})
    print_table([row, _row("fixed:1.5", results)])
    out = capsys.readouterr().out
    assert "sb3.PPO with --agent-param kwargs.batch_size=64 policy='MlpPolicy'" in out
    write_json([row, _row("fixed:1.5", results)], tmp_path / "e.json")
    data = json.loads((tmp_path / "e.json").read_text())
    assert data[0]["agent_params"] == {"kwargs.batch_size": 64, "policy": "MlpPolicy"}
    assert data[1]["agent_params"] == {}


def test_an_explicit_seed_range_is_played_whole(tmp_path) -> None:
    """`--seeds 2000:2020` with a config of `eval.episodes: 10` plays all 20 seeds (it was cut
    to 10 without a word); `--episodes` still picks the first N of the range."""
    from rlsuite.cli import main
    from rlsuite.config import load_config
    from rlsuite.evaluation import evaluate
    from rlsuite.training import train

    config = load_config(
        Path(__file__).resolve().parents[2] / "configs" / "sor" / "tsallis_inf.yaml",
        [
            "train.total_steps=20",
            "eval.episodes=10",
            "eval.seeds=1000:1010",
            "eval.baselines=[]",
            "env.kwargs.n=6",
            "env.kwargs.sequence_length=4",
        ],
    )
    run = train(config, tmp_path / "run", progress=False)
    assert evaluate(run.path, seeds="2000:2020")[0].episodes == 20
    assert evaluate(run.path, seeds="2000:2020", episodes=5)[0].episodes == 5
    assert evaluate(run.path)[0].episodes == 10
    assert (
        main(["eval", str(run.path), "--seeds", "2000:2004", "--json", str(tmp_path / "e.json")])
        == 0
    )
