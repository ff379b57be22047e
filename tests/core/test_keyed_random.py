"""Counter-based random numbers: reproducible, independent of batch composition, well distributed."""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch

from rlsuite import keyed_random


def test_draws_do_not_depend_on_the_batch_they_are_in() -> None:
    keys = keyed_random.combine(torch.arange(10), 3)
    together = keyed_random.normal(keys, 7)
    alone = torch.cat([keyed_random.normal(keys[i : i + 1], 7) for i in range(10)])
    torch.testing.assert_close(together, alone, rtol=0, atol=0)


def test_known_splitmix64_values() -> None:
    # SplitMix64 reference: state 0 -> first output 0xE220A8397B1DCDAF (Vigna's splitmix64.c).
    golden = -7046029254386353131
    first = keyed_random.mix(torch.tensor([golden]))
    assert int(first) & (2**64 - 1) == 0xE220A8397B1DCDAF


def test_uniform_and_normal_distributions() -> None:
    keys = keyed_random.combine(torch.arange(200), 11)
    u = keyed_random.uniform(keys, 500).flatten().numpy()
    assert 0 < u.min() and u.max() < 1
    assert scipy.stats.kstest(u, "uniform").pvalue > 1e-3
    z = keyed_random.normal(keys, 501).flatten().numpy()
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-3


def test_different_keys_and_streams_are_uncorrelated() -> None:
    a = keyed_random.uniform(keyed_random.combine(torch.arange(2000), 0, 1), 1).flatten().numpy()
    b = keyed_random.uniform(keyed_random.combine(torch.arange(2000), 0, 2), 1).flatten().numpy()
    c = keyed_random.uniform(keyed_random.combine(torch.arange(2000), 1, 1), 1).flatten().numpy()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.1 and abs(np.corrcoef(a, c)[0, 1]) < 0.1
    assert len(set(a.tolist())) == 2000
