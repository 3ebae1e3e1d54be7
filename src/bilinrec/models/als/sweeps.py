"""The sweep engine of :class:`~.model.ALS`: alternating row solves, the stopping rule and the objective.

:class:`SweepEngine` holds what :meth:`ALS.fit <.model.ALS.fit>` and :meth:`ALS.unlearn
<.forgetting.ForgettingMethods.unlearn>` share: full sweeps (every user row, then every item row,
each solved exactly or by conjugate gradients with the other side fixed), the optional
acceleration (Anderson, :mod:`.anderson`; gauge balancing, :mod:`.balance`; ALS-NCG, :mod:`.ncg`),
the history records and the training objective.
It is a base class of :class:`~.model.ALS` only, kept apart so that the estimator's API, the
sweeps and forgetting can each be read alone.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import anderson
from .anderson import Anderson
from .balance import balance
from .cells import Cells
from .ncg import NCG, line_coefficients, plane_argmin, plane_coefficients, quartic_argmin
from .scores import cell_terms
from .threads import kernel_workers


class SweepEngine:
    """ALS sweeps over a model's factors (``user_factors_``, ``item_factors_``, biases) on given
    :class:`~.cells.Cells`, appending one record per sweep to ``history_``. A base class of
    :class:`~.model.ALS`, which supplies the parameters (``solver``, ``acceleration``, ...)."""

    def _iterate(self, cells, iterations, tol, callback, show_progress, desc, local=None, solver=None):
        """Sweeps until ``iterations`` or ``tol`` (after the ``local`` rows first), appending to
        ``history_``; ``solver`` overrides the ``solver`` parameter (unlearn chooses its own)."""
        from tqdm.auto import tqdm

        start = time.perf_counter()
        record = self._record(cells, 0, "start", 0.0, 0.0, None)
        self.history_.append(record)
        previous = record["objective"]
        full = cells.shape[0] + cells.shape[1]
        if local is not None:
            t0 = time.perf_counter()
            self._half_sweep(cells, users=local[0], solver=solver)
            self._half_sweep(cells, items=local[1], solver=solver)
            record = self._record(cells, 0, "local", time.perf_counter() - t0,
                                  time.perf_counter() - start, previous)
            record["rows_solved"] = int(local[0].size + local[1].size)
            self.history_.append(record)
            previous = record["objective"]
        balanced = self.acceleration == "balanced_anderson"
        ncg = self.acceleration == "ncg"
        accel = None  # the acceleration's memory
        if ncg:
            accel = NCG()
        elif self.acceleration is not None:
            accel = Anderson(self.anderson_memory, self.anderson_mixing)
        proposal = None  # the extrapolated start of the next sweep (acceleration="anderson")
        confirming = False  # this iteration is a plain sweep that must confirm an accelerated stop
        bar = tqdm(range(1, iterations + 1), desc=desc, disable=not show_progress, leave=False)
        for it in bar:
            t0, cpu0 = time.perf_counter(), time.process_time()
            if confirming:
                self._sweep(cells, solver)
                record = self._record(cells, it, "sweep", time.perf_counter() - t0, time.perf_counter() - start, previous)
                record.update(rows_solved=full, cpu_seconds=time.process_time() - cpu0, confirming=1, rejected=0)
                if balanced or ncg:
                    record["balanced"] = 0
                if balanced:
                    record["stretched"] = 0
            elif ncg:
                record = self._ncg_step(cells, accel, it, previous, solver)
                record.update(elapsed=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu0)
            elif balanced:
                record = self._balanced_step(cells, accel, it, previous, solver)
                record.update(elapsed=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu0)
            else:
                accepted = self._item_state() if proposal is not None else None
                if proposal is not None:
                    self._set_item_state(proposal)
                begin = self._item_state() if accel is not None else None
                self._sweep(cells, solver)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                record = self._record(cells, it, "sweep", seconds, time.perf_counter() - start, previous)
                record["rows_solved"], record["cpu_seconds"] = full, cpu
            if accel is not None and not balanced and not ncg and not confirming:
                record["rejected"] = 0
                if accepted is not None and not anderson.accept(record["objective"], previous):
                    # safeguard: the extrapolated start raised the objective; a plain sweep from
                    # the last accepted point instead (its cost is counted in this record)
                    t1, cpu1 = time.perf_counter(), time.process_time()
                    self._set_item_state(accepted)
                    accel.reset()
                    begin = accepted
                    self._sweep(cells, solver)
                    seconds += time.perf_counter() - t1
                    cpu += time.process_time() - cpu1
                    record = self._record(cells, it, "sweep", seconds, time.perf_counter() - start, previous)
                    record.update(rows_solved=2 * full, cpu_seconds=cpu, rejected=1, objectives=2)
                proposal = accel.propose(begin, self._item_state())
            if callback is not None:
                extra = callback(self, record)
                if extra:
                    record.update(extra)
            self.history_.append(record)
            bar.set_postfix(objective=f"{record['objective']:.6g}", rel=f"{record['rel_change']:.2e}")
            previous = record["objective"]
            if record["rel_change"] < tol:
                if accel is None or confirming:
                    break
                # an accelerated step's small change need not be a fixed point (after an extrapolation
                # one more plain sweep can still move by far more): stop only if a plain sweep agrees
                confirming = True
            elif confirming:
                confirming = False
                accel.reset()
                proposal = None
        bar.close()

    def _balanced_step(self, cells, accel, it, previous, solver=None):
        """One iteration of ``acceleration="balanced_anderson"``: a sweep, then gauge balancing
        (:mod:`.balance`), then the Anderson extrapolation over users and items together, kept
        only if its objective is at most the sweep's (the safeguard, :func:`.anderson.accept`:
        checked before any sweep starts from it, so a rejection costs one objective evaluation).
        A rejected extrapolation is replaced by the sweep's step stretched (one more objective
        evaluation, under the same guard), then the memory is cleared."""
        t0 = time.perf_counter()
        begin = self._state()
        self._sweep(cells, solver)
        balanced = balance(self.user_factors_, self.item_factors_, self._reg(cells, 0), self._reg(cells, 1))
        image = self._state()
        record = self._record(cells, it, "sweep", 0.0, 0.0, previous)
        record.update(rows_solved=sum(cells.shape), balanced=int(balanced), rejected=0, stretched=0)
        proposal = accel.propose(begin, image)
        if proposal is not None:
            self._set_state(proposal)
            extrapolated = self._objective(cells)
            record["objectives"] += 1
            if anderson.accept(extrapolated, record["objective"]):
                record["objective"] = extrapolated
                record["rel_change"] = abs(previous - extrapolated) / max(abs(previous), 1e-300)
            else:
                # rejected: try the sweep's own step, stretched (``accel.stride``: doubled after a
                # success, quartered after a failure); near a saddle the sweeps move at nearly
                # constant speed and the extrapolation points back to it, the stretch escapes
                self._set_state(image + accel.stride * (image - begin))
                stretched = self._objective(cells)
                record.update(rejected=1, objectives=record["objectives"] + 1)
                if anderson.accept(stretched, record["objective"]):
                    record.update(objective=stretched, stretched=1,
                                  rel_change=abs(previous - stretched) / max(abs(previous), 1e-300))
                    accel.stride *= 2
                else:
                    self._set_state(image)
                    accel.stride = max(1.0, accel.stride / 4)
                accel.reset()
        record["seconds"] = time.perf_counter() - t0
        return record

    def _ncg_step(self, cells, accel, it, previous, solver=None):
        """One iteration of ``acceleration="ncg"`` (:mod:`.ncg`): a balanced sweep ``P(x)`` from ``x``,
        then the exact search for the lowest point of the plane ``x + a (P(x) - x) + b s`` (``s`` the
        last step; a line search along ``P(x) - x`` after a restart). The new point is kept only if
        its objective is at most ``P(x)``'s (the safeguard, checked on the evaluated objective),
        otherwise ``P(x)`` is, and the memory is cleared."""
        t0 = time.perf_counter()
        x = self._state()
        n_users, k = self.user_factors_.shape
        reg_u, reg_i = self._reg(cells, 0), self._reg(cells, 1)
        self._sweep(cells, solver)
        balanced = balance(self.user_factors_, self.item_factors_, reg_u, reg_i)
        image = self._state()
        swept = self._objective(cells)
        shared = dict(n_users=n_users, k=k, reg_u=reg_u, reg_i=reg_i, mean=getattr(self, "global_mean_", 0.0),
                      use_bias=self.use_bias, workers=self.num_threads or 1)
        preconditioned = image - x
        plane = accel.step is not None
        if plane:
            a, b = plane_argmin(plane_coefficients(cells, x, preconditioned, accel.step, **shared))
            step = a * preconditioned + b * accel.step
        else:
            a = quartic_argmin(line_coefficients(cells, x, preconditioned, **shared))
            step = a * preconditioned
        self._set_state(x + step)
        objective = self._objective(cells)
        rejected = not anderson.accept(objective, swept)
        if rejected:
            self._set_state(image)
            objective = swept
            accel.reset()
        else:
            accel.step = step
        rel = abs(previous - objective) / max(abs(previous), 1e-300)
        return {"iteration": it, "phase": "sweep", "objective": objective, "rel_change": rel,
                "seconds": time.perf_counter() - t0, "elapsed": 0.0, "rows_solved": sum(cells.shape),
                "objectives": 2, "plane_searches": int(plane), "line_searches": int(not plane),
                "balanced": int(balanced), "rejected": int(rejected), "step": float(a)}

    def _sweep(self, cells: Cells, solver: str | None = None) -> None:
        """One full ALS sweep: every user row, then every item row."""
        self._half_sweep(cells, users=slice(None), solver=solver)
        self._half_sweep(cells, items=slice(None), solver=solver)

    def _state(self) -> np.ndarray:
        """Users' then items' parameters (factors, and biases with ``use_bias``), float64."""
        return np.vstack([self._side_state(self.user_factors_, self.user_bias_),
                          self._side_state(self.item_factors_, self.item_bias_)])

    def _side_state(self, F: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        F = F.astype(np.float64)
        return np.column_stack([F, bias]) if self.use_bias else F

    def _set_state(self, state: np.ndarray) -> None:
        n_users, k = self.user_factors_.shape
        self.user_factors_[:] = state[:n_users, :k]
        if self.use_bias:
            self.user_bias_[:] = state[:n_users, k]
        self._set_item_state(state[n_users:])

    def _item_state(self) -> np.ndarray:
        """The item side's parameters (factors, and biases with ``use_bias``), float64: the
        state a sweep maps (users are solved from it)."""
        return self._side_state(self.item_factors_, self.item_bias_)

    def _set_item_state(self, state: np.ndarray) -> None:
        k = self.item_factors_.shape[1]
        self.item_factors_[:] = state[:, :k]
        if self.use_bias:
            self.item_bias_[:] = state[:, k]

    def _record(self, cells, iteration, phase, seconds, elapsed, previous):
        objective = self._objective(cells)
        rel = None if previous is None else abs(previous - objective) / max(abs(previous), 1e-300)
        return {"iteration": iteration, "phase": phase, "objective": objective, "rel_change": rel,
                "seconds": seconds, "elapsed": elapsed, "rows_solved": 0, "objectives": 1}

    def _half_sweep(self, cells: Cells, users: Any = None, items: Any = None, solver: str | None = None) -> None:
        """Re-solve all (``slice(None)``) or the given users' (or items') rows, the other side fixed,
        with ``solver`` (default: the ``solver`` parameter)."""
        axis = 0 if users is not None else 1
        which = users if axis == 0 else items
        rows = None if isinstance(which, slice) else np.asarray(which, dtype=np.int64)
        own, other = (self.user_factors_, self.item_factors_) if axis == 0 else (self.item_factors_, self.user_factors_)
        reg = self._reg(cells, axis)
        workers = self.num_threads or 1

        def solve(own, other, target_shift=None):
            solved = np.arange(cells.shape[axis]) if rows is None else rows
            if (solver or self.solver) == "cg":
                from .cg import (
                    cg_solve_rows,  # compiles on first use (cached on disk)
                )

                cg_solve_rows(own, solved, cells.csr(axis), other, cells.base, reg, self.cg_steps,
                              target_shift, workers)
            else:
                from .chol import (
                    cholesky_solve_rows,  # compiles on first use (cached on disk)
                )

                cholesky_solve_rows(own, solved, cells.csr(axis), other, cells.base, reg, target_shift, workers)

        if not self.use_bias:
            solve(own, other)
            return
        # biases: solve [x_u, b_u] against [y_i, 1] with targets r - mu - b_i
        own_bias = self.user_bias_ if axis == 0 else self.item_bias_
        other_bias = self.item_bias_ if axis == 0 else self.user_bias_
        ext_other = np.column_stack([other, np.ones(other.shape[0], self._dtype)])
        ext_own = np.column_stack([own, own_bias])
        solve(ext_own, ext_other, self.global_mean_ + other_bias)
        own[:] = ext_own[:, :-1]
        own_bias[:] = ext_own[:, -1]

    def _reg(self, cells: Cells, axis: int) -> np.ndarray:
        n = cells.shape[axis]
        if not self.scale_regularization:
            return np.full(n, self.regularization)
        return self.regularization * np.maximum(cells.counts(axis), 1.0)


    def _objective(self, cells: Cells) -> float:
        X = self.user_factors_.astype(np.float64)
        Y = self.item_factors_.astype(np.float64)
        total = 0.0
        if cells.base:
            total += cells.base * float(np.sum((X.T @ X) * (Y.T @ Y)))
        shift_u = shift_i = None
        if self.use_bias:
            shift_u = self.global_mean_ + self.user_bias_.astype(np.float64)
            shift_i = self.item_bias_.astype(np.float64)
        with kernel_workers(self.num_threads or 1):
            total += cell_terms(cells.csr(0), self.user_factors_, self.item_factors_, cells.base, shift_u, shift_i)
        reg_u, reg_i = self._reg(cells, 0), self._reg(cells, 1)
        sq_u, sq_i = np.sum(X**2, axis=1), np.sum(Y**2, axis=1)
        if self.use_bias:
            sq_u = sq_u + self.user_bias_.astype(np.float64) ** 2
            sq_i = sq_i + self.item_bias_.astype(np.float64) ** 2
        return total + float(reg_u @ sq_u + reg_i @ sq_i)
