"""Counter-based random numbers: a pure function of (key, counter), batched on any device.

Batched environments need every member of the batch to draw its own reproducible instance
without a Python loop over per-environment generators. Here a random number is a hash of an
integer key (the environment's seed and episode) and a counter (the step and the position in
the tensor): the same key gives the same numbers on CPU and CUDA, for a batch of one or of
4096, whatever order the environments are stepped in. This is the idea of counter-based
generators (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011); the hash
is SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014) on int64 tensors, where
multiplication wraps modulo 2**64 as in C.
"""

from __future__ import annotations

import torch

_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
_MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_MIX2 = -7723592293110705685  # 0x94D049BB133111EB
_MASK53 = (1 << 53) - 1


def _shift_right(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser: a bijective avalanche hash of int64 values."""
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    return x ^ _shift_right(x, 31)


def combine(*parts: torch.Tensor | int) -> torch.Tensor:
    """Hash several integer tensors (broadcast together) into one int64 key."""
    key: torch.Tensor | None = None
    for part in parts:
        p = torch.as_tensor(part, dtype=torch.int64)
        key = mix(p + _GOLDEN) if key is None else mix(key * _GOLDEN + mix(p + _GOLDEN))
    if key is None:
        raise ValueError("combine() needs at least one part")
    return key


def uniform(key: torch.Tensor, size: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform numbers in the open interval (0, 1), shape ``key.shape + (size,)``.

    ``key`` is an int64 tensor of any shape (one key per environment, typically from
    :func:`combine`); its device is the output's device. 53 random bits per number.
    """
    counter = torch.arange(size, device=key.device, dtype=torch.int64)
    bits = mix(key.unsqueeze(-1) * _GOLDEN + mix(counter + _GOLDEN))
    mantissa = _shift_right(bits, 11) & _MASK53
    return ((mantissa.to(torch.float64) + 0.5) / float(1 << 53)).to(dtype)


def normal(key: torch.Tensor, size: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normal numbers by the Box–Muller transform, shape ``key.shape + (size,)``."""
    half = (size + 1) // 2
    u = uniform(key, 2 * half)
    radius = torch.sqrt(-2.0 * torch.log(u[..., :half]))
    angle = 2.0 * torch.pi * u[..., half:]
    z = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    return z[..., :size].to(dtype)
