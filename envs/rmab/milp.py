"""A solver-neutral mixed-integer linear program and its adapters to SCIP and HiGHS.

The feasible actions of a coRMAB instance are the integer points of

    row_lower ≤ A x ≤ row_upper,    lower ≤ x ≤ upper,    x_i integer where ``integrality[i]``

(``A`` a SciPy CSR matrix; a bound of ±inf means none). :class:`MILP` holds exactly that, plus a
name per variable, and knows nothing of any solver. An agent that optimises over the feasible
set (SEQUOIA embeds a Q-network in it) adds its own variables and constraints with
:meth:`MILP.extend` and hands the result to a backend:

* ``"highs"`` — HiGHS through ``highspy`` (:func:`to_highs`);
* ``"scip"`` — SCIP through PySCIPOpt (:func:`to_scip`).

Both are in the ``[mip]`` extra (``pip install 'rlsuite[mip]'``). (``ortools`` and ``highspy``
cannot be imported in one process; rlsuite uses neither ``ortools`` nor any other solver.)
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

BACKENDS = ("highs", "scip")


class InfeasibleError(RuntimeError):
    """The program has no feasible point (or the solver stopped without finding one)."""


@dataclass(frozen=True)
class MILP:
    """``row_lower ≤ A x ≤ row_upper``, ``lower ≤ x ≤ upper``, integrality per variable."""

    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integrality: np.ndarray  # bool per variable
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        m, n = self.A.shape
        for key, size in (
            ("row_lower", m),
            ("row_upper", m),
            ("lower", n),
            ("upper", n),
            ("integrality", n),
        ):
            if np.shape(getattr(self, key)) != (size,):
                raise ValueError(
                    f"MILP.{key} must have shape ({size},), got {np.shape(getattr(self, key))}"
                )
        if len(self.names) != n:
            raise ValueError(f"MILP.names must name all {n} variables, got {len(self.names)}")

    @property
    def num_vars(self) -> int:
        return self.A.shape[1]

    @property
    def num_rows(self) -> int:
        return self.A.shape[0]

    def satisfied_by(self, x: np.ndarray, tol: float = 1e-6) -> bool:
        """Whether ``x`` satisfies every bound, row and integrality (used by tests and checks)."""
        x = np.asarray(x, dtype=np.float64)
        ax = self.A @ x
        return bool(
            np.all(x >= self.lower - tol)
            and np.all(x <= self.upper + tol)
            and np.all(ax >= self.row_lower - tol)
            and np.all(ax <= self.row_upper + tol)
            and np.all(np.abs(x[self.integrality] - np.round(x[self.integrality])) <= tol)
        )

    def extend(
        self,
        *,
        lower: Sequence[float] = (),
        upper: Sequence[float] = (),
        integrality: Sequence[bool] = (),
        names: Sequence[str] = (),
        rows: sp.spmatrix | None = None,
        row_lower: Sequence[float] = (),
        row_upper: Sequence[float] = (),
    ) -> MILP:
        """A new program with extra variables (appended after the existing ones) and extra rows
        over all variables (``rows`` has ``num_vars + len(lower)`` columns)."""
        k = len(lower)
        if not (len(upper) == len(integrality) == len(names) == k):
            raise ValueError("extend(): lower, upper, integrality and names need the same length")
        n = self.num_vars + k
        A = sp.hstack([self.A, sp.csr_matrix((self.num_rows, k))], format="csr")
        rl, ru = self.row_lower, self.row_upper
        if rows is not None:
            rows = sp.csr_matrix(rows)
            if rows.shape[1] != n:
                raise ValueError(f"extend(): rows must have {n} columns, got {rows.shape[1]}")
            A = sp.vstack([A, rows], format="csr")
            rl = np.concatenate([rl, np.asarray(row_lower, dtype=np.float64)])
            ru = np.concatenate([ru, np.asarray(row_upper, dtype=np.float64)])
        return MILP(
            A,
            rl,
            ru,
            np.concatenate([self.lower, np.asarray(lower, dtype=np.float64)]),
            np.concatenate([self.upper, np.asarray(upper, dtype=np.float64)]),
            np.concatenate([self.integrality, np.asarray(integrality, dtype=bool)]),
            (*self.names, *names),
        )

    def with_bounds(self, lower: np.ndarray, upper: np.ndarray) -> MILP:
        """The same program with other variable bounds (e.g. some variables fixed)."""
        return MILP(
            self.A, self.row_lower, self.row_upper, lower, upper, self.integrality, self.names
        )

    def solve(
        self,
        objective: np.ndarray,
        *,
        maximize: bool = True,
        backend: str = "highs",
        time_limit: float | None = None,
    ) -> np.ndarray:
        """An optimal ``x`` of ``objective · x`` (integers rounded exactly); raises
        :class:`InfeasibleError` when there is none, or when ``time_limit`` (seconds) ran out
        before optimality was proven (:meth:`optimize` returns the incumbent instead)."""
        x, optimal = self.optimize(
            objective, maximize=maximize, backend=backend, time_limit=time_limit
        )
        if not optimal:
            raise InfeasibleError(
                f"{backend} reached the time limit of {time_limit} s before proving optimality"
            )
        return x

    def optimize(
        self,
        objective: np.ndarray,
        *,
        maximize: bool = True,
        backend: str = "highs",
        time_limit: float | None = None,
        start: np.ndarray | None = None,
    ) -> tuple[np.ndarray, bool]:
        """``(x, proven_optimal)``: an optimal ``x`` of ``objective · x``, or the best feasible
        one found when ``time_limit`` (seconds) ran out (``proven_optimal`` False). ``start``, a
        feasible point, is handed to the solver as its first incumbent (so a time limit never
        leaves it with nothing). Raises :class:`InfeasibleError` when no feasible point was
        found."""
        objective = np.asarray(objective, dtype=np.float64)
        if objective.shape != (self.num_vars,):
            raise ValueError(f"objective must have shape ({self.num_vars},), got {objective.shape}")
        if not np.all(np.isfinite(objective)):
            bad = np.flatnonzero(~np.isfinite(objective))
            raise ValueError(
                f"objective must be finite; entries {bad[:8].tolist()} are "
                f"{objective[bad[:8]].tolist()} (variables {[self.names[i] for i in bad[:8]]})"
            )
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        if start is not None:
            start = np.asarray(start, dtype=np.float64)
            if start.shape != (self.num_vars,) or not self.satisfied_by(start):
                raise ValueError(f"start must be a feasible point of shape ({self.num_vars},)")
        if backend == "highs":
            x, optimal = _solve_highs(self, objective, maximize, time_limit, start)
        elif backend == "scip":
            x, optimal = _solve_scip(self, objective, maximize, time_limit, start)
        else:
            raise ValueError(f"unknown MILP backend {backend!r}; known: {', '.join(BACKENDS)}")
        return np.where(self.integrality, np.round(x), x) + 0.0, optimal  # + 0.0: no -0.0


def _import(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise ImportError(
            f"solving the feasible-set MILP needs {module!r}: pip install 'rlsuite[mip]'"
        ) from err


def _finite(values: np.ndarray, inf: float) -> np.ndarray:
    return np.where(np.isinf(values), np.copysign(inf, values), values)


_highs_banner_shown = False


def _new_highs(highspy):
    """A ``Highs`` model. HiGHS prints a copyright banner on the process's stdout when its first
    model is built, whatever ``output_flag`` says; that first one is built with stdout closed."""
    global _highs_banner_shown
    if _highs_banner_shown:
        return highspy.Highs()
    _highs_banner_shown = True
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def to_highs(problem: MILP, objective: np.ndarray, maximize: bool = True):
    """A ``highspy.Highs`` model of ``problem`` with ``objective`` (not yet run)."""
    highspy = _import("highspy")
    h = _new_highs(highspy)
    h.setOptionValue("output_flag", False)
    lp = highspy.HighsLp()
    inf = highspy.kHighsInf
    A = problem.A.tocsc()
    lp.num_col_ = problem.num_vars
    lp.num_row_ = problem.num_rows
    lp.col_cost_ = objective
    lp.col_lower_ = _finite(problem.lower, inf)
    lp.col_upper_ = _finite(problem.upper, inf)
    lp.row_lower_ = _finite(problem.row_lower, inf)
    lp.row_upper_ = _finite(problem.row_upper, inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
        for i in problem.integrality
    ]
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    h.passModel(lp)
    return h


def _solve_highs(
    problem: MILP,
    objective: np.ndarray,
    maximize: bool,
    time_limit: float | None,
    start: np.ndarray | None,
) -> tuple[np.ndarray, bool]:
    highspy = _import("highspy")
    h = to_highs(problem, objective, maximize)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    if start is not None:
        incumbent = highspy.HighsSolution()
        incumbent.col_value = start.tolist()
        h.setSolution(incumbent)
    h.run()
    status = h.getModelStatus()
    optimal = status == highspy.HighsModelStatus.kOptimal
    timed_out = status == highspy.HighsModelStatus.kTimeLimit and h.getSolution().value_valid
    if not (optimal or timed_out):
        raise InfeasibleError(f"HiGHS found no feasible point: {h.modelStatusToString(status)}")
    return np.asarray(h.getSolution().col_value, dtype=np.float64), optimal


def to_scip(problem: MILP, objective: np.ndarray, maximize: bool = True):
    """A ``pyscipopt.Model`` of ``problem`` with ``objective``; its variables are in
    ``model.data`` (a list, in the program's order)."""
    pyscipopt = _import("pyscipopt")
    model = pyscipopt.Model()
    model.hideOutput()
    xs = [
        model.addVar(
            name=problem.names[i],
            vtype="I" if problem.integrality[i] else "C",
            lb=None if math.isinf(problem.lower[i]) else float(problem.lower[i]),
            ub=None if math.isinf(problem.upper[i]) else float(problem.upper[i]),
            obj=float(objective[i]),
        )
        for i in range(problem.num_vars)
    ]
    A = problem.A
    for r in range(problem.num_rows):
        lo, hi = A.indptr[r], A.indptr[r + 1]
        expr = pyscipopt.quicksum(
            float(v) * xs[j] for j, v in zip(A.indices[lo:hi], A.data[lo:hi], strict=True)
        )
        lhs, rhs = problem.row_lower[r], problem.row_upper[r]
        if lhs == rhs:
            model.addCons(expr == float(rhs))
        else:
            if not math.isinf(lhs):
                model.addCons(expr >= float(lhs))
            if not math.isinf(rhs):
                model.addCons(expr <= float(rhs))
    model.setMaximize() if maximize else model.setMinimize()
    model.data = xs
    return model


def _solve_scip(
    problem: MILP,
    objective: np.ndarray,
    maximize: bool,
    time_limit: float | None,
    start: np.ndarray | None,
) -> tuple[np.ndarray, bool]:
    model = to_scip(problem, objective, maximize)
    if time_limit is not None:
        model.setParam("limits/time", float(time_limit))
    if start is not None:
        incumbent = model.createSol()
        for var, value in zip(model.data, start.tolist(), strict=True):
            model.setSolVal(incumbent, var, value)
        model.addSol(incumbent)
    model.optimize()
    optimal = model.getStatus() == "optimal"
    if not optimal and not (model.getStatus() == "timelimit" and model.getNSols() > 0):
        raise InfeasibleError(f"SCIP found no feasible point: status {model.getStatus()!r}")
    best = model.getBestSol()
    return np.array([model.getSolVal(best, x) for x in model.data], dtype=np.float64), optimal
