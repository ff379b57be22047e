"""The mallocGame's validity invariant, by property tests and by 2,000 random rollouts.

No two fast-memory rectangles overlap in time × offset, every placement lies within capacity,
masked actions are refused, the offered offsets are exactly the fitting gap bottoms, and each
episode's return equals an independent recomputation from the final layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from layout_checks import (
    candidate_offsets,
    check_final_layout,
    fraction_of_time_saved,
)
from rlsuite.envs.malloc.instances import Instance
from rlsuite.envs.malloc.vector import MallocGameVectorEnv, MallocPackVectorEnv


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    num_ops = draw(st.integers(1, 8))
    n = draw(st.integers(1, 12))
    lower = np.array(draw(st.lists(st.integers(0, num_ops - 1), min_size=n, max_size=n)))
    length = np.array(draw(st.lists(st.integers(1, num_ops), min_size=n, max_size=n)))
    upper = np.minimum(lower + length, num_ops)
    size = np.array(draw(st.lists(st.integers(1, 64), min_size=n, max_size=n))) * 16
    uses = [sorted({int(lo), int(hi) - 1}) for lo, hi in zip(lower, upper, strict=True)]
    flops = np.array(draw(st.lists(st.integers(0, 10**6), min_size=num_ops, max_size=num_ops)))
    return Instance(
        name="hypothesis",
        ids=np.arange(n),
        lower=lower,
        upper=upper,
        size=size,
        use_ptr=np.concatenate([[0], np.cumsum([len(u) for u in uses])]),
        use_op=np.concatenate(uses),
        use_bytes=np.repeat(size, [len(u) for u in uses]),
        num_ops=num_ops,
        op_flops=flops.astype(float) * 1e3,
    )


@settings(max_examples=150, deadline=None)
@given(
    inst=instances(),
    mode=st.sampled_from(["map", "pack"]),
    fraction=st.floats(0.05, 1.0),
    max_offsets=st.integers(1, 4),
    choices=st.lists(st.floats(0.0, 0.999), min_size=12, max_size=12),
)
def test_every_step_offers_exactly_the_fitting_offsets(
    inst: Instance, mode: str, fraction: float, max_offsets: int, choices: list[float]
) -> None:
    cls = MallocGameVectorEnv if mode == "map" else MallocPackVectorEnv
    env = cls(instance=inst, capacity_fraction=fraction, max_offsets=max_offsets)
    _, info = env.reset(seed=0)
    capacity = env.fast_capacity(inst) if mode == "map" else None
    order = env.tables.file_index[0].numpy()
    total = 0.0
    for k in range(inst.num_buffers):
        offsets = env.buffer_offsets(0)
        expected = candidate_offsets(inst, offsets, int(order[k]), capacity)
        cands = env.candidates()
        offered = cands.offset[0][cands.slot_valid[0]].tolist()
        if mode == "map" or len(expected) <= max_offsets:
            assert offered == expected[:max_offsets]
        else:  # the packing game keeps the top gap in the last slot
            assert offered == [*expected[: max_offsets - 1], expected[-1]]
        mask = info["action_mask"][0].numpy()
        for illegal in np.flatnonzero(~mask):
            with pytest.raises(ValueError, match="illegal mallocGame action"):
                env.step(np.array([illegal]))
        legal = np.flatnonzero(mask)
        _, reward, terminated, _, info = env.step(np.array([legal[int(choices[k] * len(legal))]]))
        total += float(reward[0])
        assert bool(terminated[0]) == (k == inst.num_buffers - 1)
    final = env.buffer_offsets(0)
    check_final_layout(inst, final, capacity)
    if mode == "map":
        assert total == pytest.approx(fraction_of_time_saved(inst, final), abs=1e-6)
    else:
        assert -total == pytest.approx((final + inst.size).max() / inst.peak_live_bytes, rel=1e-6)


@pytest.mark.parametrize("cls", [MallocGameVectorEnv, MallocPackVectorEnv])
def test_a_thousand_random_rollouts_stay_valid(cls: type) -> None:
    """20 instances × 50 random legal rollouts each, per game."""
    rollouts = 0
    for seed in range(20):
        env = cls(num_envs=50, num_buffers=32, num_ops=24, instance_seed=seed)
        env.reset(seed=100 * seed)
        env.action_space.seed(seed)
        inst = env.instance()
        capacity = env.fast_capacity(inst) if cls is MallocGameVectorEnv else None
        totals = torch.zeros(50, dtype=torch.float64)
        for step in range(inst.num_buffers):
            if step % 8 == 0:  # a masked action is refused and leaves every env as it was
                mask = env.action_masks()
                env_id = int(torch.argmin(mask.sum(1)))
                masked = torch.nonzero(~mask[env_id]).flatten()
                if len(masked):
                    actions = env.action_space.sample()
                    actions[env_id] = int(masked[0])
                    before = env.get_state()
                    with pytest.raises(ValueError, match=f"env {env_id}: action"):
                        env.step(actions)
                    after = env.get_state()
                    for key, value in before.to_dict().items():
                        assert torch.equal(getattr(after, key), value), key
            _, reward, terminated, _, info = env.step(env.action_space.sample())
            totals += reward.double()
        assert bool(terminated.all())
        for i in range(50):
            final = env.buffer_offsets(i)
            check_final_layout(inst, final, capacity)
            if capacity is not None:
                assert float(info["time_saved"][i]) == pytest.approx(
                    fraction_of_time_saved(inst, final), rel=1e-9, abs=1e-12
                )
                assert float(totals[i]) == pytest.approx(float(info["time_saved"][i]), abs=1e-6)
            else:
                height = (final + inst.size).max() / inst.peak_live_bytes
                assert float(info["height_ratio"][i]) == pytest.approx(height, rel=1e-12)
                assert -float(totals[i]) == pytest.approx(height, rel=1e-6)
            rollouts += 1
    assert rollouts == 1000
