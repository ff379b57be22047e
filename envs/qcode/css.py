"""CSS quantum codes: a pair of binary parity-check matrices that commute.

A CSS code on ``n`` qubits is given by ``Hx`` (``mx × n``: each row an X-type stabiliser
check) and ``Hz`` (``mz × n``: Z-type checks) with ``Hx · Hzᵀ = 0 (mod 2)``, so every X check
commutes with every Z check. It encodes ``k = n − rank Hx − rank Hz`` logical qubits; its
distance ``d`` is the least weight of a logical operator (a vector in ``ker Hz`` not in the row
space of ``Hx``, or the same with X and Z swapped). The *check weight* of a row is its number
of ones; the *qubit degree* of a column likewise, on each side. Ranks come from
:mod:`rlsuite.envs.qcode.gf2`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from rlsuite.envs.qcode import gf2


class CodeError(ValueError):
    """A malformed code: not binary, not commuting, empty checks, or a bad file."""


@dataclass(frozen=True, eq=False)
class CSSCode:
    """``hx`` and ``hz`` are read-only ``uint8`` arrays; construction validates them."""

    hx: np.ndarray
    hz: np.ndarray
    name: str = "code"
    info: dict[str, Any] = field(default_factory=dict)  # where it came from, known parameters

    def __post_init__(self) -> None:
        for side in ("hx", "hz"):
            raw = np.asarray(getattr(self, side))
            if raw.ndim != 2:
                raise CodeError(f"{side} must be a 2-D matrix, got shape {raw.shape}")
            if raw.size and not np.isin(raw, (0, 1)).all():
                bad = np.argwhere(~np.isin(raw, (0, 1)))[0]
                raise CodeError(
                    f"{side} must be binary (0/1); entry {tuple(int(i) for i in bad)} is "
                    f"{raw[tuple(bad)]!r}"
                )
            array = np.ascontiguousarray(raw, dtype=np.uint8)
            array.setflags(write=False)
            object.__setattr__(self, side, array)
            if array.shape[0] and not array.any(1).all():
                raise CodeError(f"{side} row {int(np.flatnonzero(~array.any(1))[0])} is empty")
        if self.hx.shape[1] != self.hz.shape[1]:
            raise CodeError(
                f"hx and hz must act on the same qubits: hx has {self.hx.shape[1]} columns, "
                f"hz {self.hz.shape[1]}"
            )
        # float64 products are exact (each entry counts ≤ n shared qubits) and use BLAS
        clash = (self.hx.astype(np.float64) @ self.hz.T.astype(np.float64)).astype(np.int64) % 2
        if clash.any():
            i, j = (int(v) for v in np.argwhere(clash)[0])
            raise CodeError(
                f"the checks do not commute: X check {i} and Z check {j} overlap on an odd "
                f"number of qubits (Hx·Hzᵀ must be 0 mod 2; {int(clash.sum())} pairs fail)"
            )

    @classmethod
    def trusted(
        cls, hx: np.ndarray, hz: np.ndarray, name: str = "code", info: dict[str, Any] | None = None
    ) -> CSSCode:
        """A code from matrices known to be valid (binary ``uint8``, no empty row, commuting),
        without re-validating them: the weight-reduction moves build their results this way,
        since each move keeps ``Hx·Hzᵀ = 0`` by construction (the tests check it on random
        moves). User input goes through the validating constructor."""
        code = object.__new__(cls)
        for side, matrix in (("hx", hx), ("hz", hz)):
            array = np.ascontiguousarray(matrix, dtype=np.uint8)
            array.setflags(write=False)
            object.__setattr__(code, side, array)
        object.__setattr__(code, "name", name)
        object.__setattr__(code, "info", {} if info is None else info)
        return code

    @property
    def n(self) -> int:
        return int(self.hx.shape[1])

    @cached_property
    def k(self) -> int:
        """Logical qubits, ``n − rank Hx − rank Hz`` (computed once per code)."""
        return self.n - int(gf2.rank(self.hx)) - int(gf2.rank(self.hz))

    def check_weights(self, side: str) -> np.ndarray:
        """The weight of every ``side`` (``"x"`` or ``"z"``) check, the number of qubits it acts
        on: the row sums of ``hx`` or ``hz``, ``(m,)`` int64 (signed, so ``w − 3`` of a weight
        below 3 is negative instead of wrapping around as the ``uint8`` matrix's sums would)."""
        return self._matrix(side).sum(1, dtype=np.int64)

    def qubit_degrees(self, side: str) -> np.ndarray:
        """The ``side``-degree of every qubit, the number of ``side`` checks that act on it: the
        column sums of ``hx`` or ``hz``, ``(n,)`` int64 (signed, as :meth:`check_weights`)."""
        return self._matrix(side).sum(0, dtype=np.int64)

    @property
    def max_check_weight(self) -> int:
        return int(max(self.hx.sum(1).max(initial=0), self.hz.sum(1).max(initial=0)))

    @property
    def max_qubit_degree(self) -> int:
        return int(max(self.hx.sum(0).max(initial=0), self.hz.sum(0).max(initial=0)))

    def _matrix(self, side: str) -> np.ndarray:
        if side not in ("x", "z"):
            raise ValueError(f"side must be 'x' or 'z', got {side!r}")
        return self.hx if side == "x" else self.hz

    def __repr__(self) -> str:
        return f"CSSCode({self.name!r}, n={self.n}, k={self.k}, mx={self.hx.shape[0]}, mz={self.hz.shape[0]})"
