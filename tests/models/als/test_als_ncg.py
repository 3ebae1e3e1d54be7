"""ALS(acceleration="ncg"): the exact line and plane polynomials it is built on and the plane's
search, the same fixed point as plain ALS in far fewer sweeps, an objective that never rises, and a
safeguard that keeps every iteration at least as good as the balanced sweep it started with."""

import numpy as np
import pytest

from bilinrec.models.als import ALS, anderson
from bilinrec.models.als import sweeps as sweeps_module
from bilinrec.models.als.cells import build_cells
from bilinrec.models.als.ncg import (PLANE_EXPONENTS, line_coefficients, plane_argmin, plane_coefficients,
                                     plane_value, quartic_argmin)
from test_als_anderson import data, rises  # one problem maker and monotonicity check for all

SETTINGS = [{"feedback": "implicit"}, {"feedback": "explicit"}, {"feedback": "explicit", "use_bias": True},
            {"feedback": "implicit", "scale_regularization": True}]


def fixed_point(model, C) -> bool:
    check = model.copy().set_params(acceleration=None, iterations=1, tol=0.0).fit(C, warm_start=True)
    before, after = check.history_[0]["objective"], check.history_[1]["objective"]
    return abs(after - before) <= 1e-12 * before


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_line_and_plane_polynomials_are_the_objectives(setting):
    C = data(1)
    model = ALS(factors=4, regularization=0.1, iterations=3, random_state=0, dtype=np.float64, **setting).fit(C)
    cells = build_cells(model._confidences(C), model.feedback, None, None)
    x = model._state()
    first, second = np.random.default_rng(0).standard_normal((2, *x.shape))
    shared = dict(n_users=C.shape[0], k=4, reg_u=model._reg(cells, 0), reg_i=model._reg(cells, 1),
                  mean=getattr(model, "global_mean_", 0.0), use_bias=model.use_bias)
    line = line_coefficients(cells, x, first, **shared)
    plane = plane_coefficients(cells, x, first, second, **shared)
    for a, b in ((0.0, 0.0), (0.37, 0.0), (-1.3, 0.6), (2.5, -1.7), (0.0, 0.9)):
        model._set_state(x + a * first + b * second)
        objective = model._objective(cells)
        assert plane_value(plane, a, b) == pytest.approx(objective, rel=1e-12)
        if b == 0:
            assert np.polyval(line[::-1], a) == pytest.approx(objective, rel=1e-12)


def _square_sum(rng, terms: int) -> np.ndarray:
    """Coefficients of ``sum_t q_t(a, b)^2 + 0.01 (a^2 + b^2)`` for random quadratics ``q_t``: a
    plane polynomial bounded below, with several local minima."""
    from bilinrec.models.als.ncg import _PRODUCT
    coefficients = np.zeros(len(PLANE_EXPONENTS))
    for _ in range(terms):
        q = rng.standard_normal(6)
        np.add.at(coefficients, _PRODUCT, np.outer(q, q))
    coefficients[[3, 5]] += 0.01
    return coefficients


@pytest.mark.parametrize("seed", range(6))
def test_the_plane_search_finds_the_lowest_point_and_never_worse_than_the_sweep(seed):
    coefficients = _square_sum(np.random.default_rng(seed), 2)
    a, b = plane_argmin(coefficients)
    grid = np.linspace(-6, 6, 1201)
    A, B = np.meshgrid(grid, grid)
    values = sum(c * A ** i * B ** j for c, (i, j) in zip(coefficients, PLANE_EXPONENTS))
    assert plane_value(coefficients, a, b) <= plane_value(coefficients, 1.0, 0.0)
    assert plane_value(coefficients, a, b) <= values.min() + 1e-9


@pytest.mark.parametrize("coefficients, expected", [
    ((4.0, -4.0, -3.0, 2.0, 1.0), 1.0),  # (a^2 + a - 2)^2 = a^4 + 2a^3 - 3a^2 - 4a + 4: minima at 1 and -2
    ((1.0, 2.0, 1.0, 0.0, 0.0), 0.0),  # increasing for a >= 0: no step
    ((0.0, -2.0, 1.0, 0.0, 0.0), 1.0),  # a quadratic (degenerate quartic)
    ((0.0, 0.0, -1.0, -0.5, 0.25), (1.5 + np.sqrt(10.25)) / 2)])  # f' = a (a^2 - 1.5 a - 2)
def test_the_line_search_takes_the_global_minimiser_over_nonnegative_steps(coefficients, expected):
    f = np.asarray(coefficients)
    alpha = quartic_argmin(f)
    grid = np.linspace(0, 10, 100001)
    assert alpha == pytest.approx(expected, abs=1e-9)
    assert np.polyval(f[::-1], alpha) <= np.polyval(f[::-1], grid).min() + 1e-12


@pytest.mark.parametrize("seed, extra", [(0, {}), (3, {}), (4, {"scale_regularization": True})])
def test_ncg_reaches_the_fixed_point_of_plain_als_in_far_fewer_sweeps(seed, extra):
    C = data(seed)
    params = dict(factors=4, regularization=0.1, tol=1e-14, random_state=0, **extra)
    plain = ALS(iterations=20000, **params).fit(C)
    fast = ALS(iterations=2000, acceleration="ncg", **params).fit(C)
    assert fast.history_[-1]["objective"] == pytest.approx(plain.history_[-1]["objective"], rel=1e-9)
    np.testing.assert_allclose(fast.predict(*np.indices(C.shape)), plain.predict(*np.indices(C.shape)), atol=1e-4)
    # measured: 43 and 53 iterations against 1,684 and 1,732; 38 against 185 with ALS-WR weights
    assert fast.train_iterations_ <= plain.train_iterations_ / 4
    assert not rises(fast).any() and fixed_point(fast, C)
    # every iteration's work is recorded: a sweep, two objectives and a line search (the first
    # and after a restart) or a plane search
    steps = [r for r in fast.history_[1:] if not r.get("confirming")]
    assert all(r["objectives"] == 2 and r["plane_searches"] + r["line_searches"] == 1 for r in steps)
    assert steps[0]["line_searches"] == 1 and sum(r["plane_searches"] for r in steps) >= len(steps) / 2


def test_with_biases_it_converges_to_a_fixed_point():
    """Explicit feedback with biases: the biases are part of the state, the line and the gradient.
    Sparse explicit problems have several local minima, so this checks a fixed point."""
    C = data(5)
    fast = ALS(factors=4, regularization=0.1, tol=1e-14, iterations=2000, random_state=0, feedback="explicit",
               use_bias=True, acceleration="ncg").fit(C)
    assert fast.train_iterations_ < 1000 and not rises(fast).any()
    assert max(float(r.max()) for r in fast.row_residuals(C)) < 1e-5
    assert fixed_point(fast, C)


def test_the_safeguard_rejects_an_overshooting_step(monkeypatch):
    """With searches that overshoot (three times the minimiser, plus 1), guarded: the objective
    never rises, the overshooting steps are rejected in favour of the balanced sweep, and the fit
    still reaches plain ALS's fixed point; unguarded, the objective rises."""
    C = data(0)
    params = dict(factors=4, regularization=0.1, tol=1e-14, iterations=3000, random_state=0)
    plain = ALS(**params).fit(C)
    monkeypatch.setattr(sweeps_module, "quartic_argmin", lambda f: 3 * quartic_argmin(f) + 1)
    monkeypatch.setattr(sweeps_module, "plane_argmin", lambda f: tuple(3 * v + 1 for v in plane_argmin(f)))
    guarded = ALS(acceleration="ncg", **params).fit(C)
    assert not rises(guarded).any() and sum(r["rejected"] for r in guarded.history_[1:]) > 5
    assert guarded.history_[-1]["objective"] == pytest.approx(plain.history_[-1]["objective"], rel=1e-9)
    monkeypatch.setattr(anderson, "accept", lambda objective, previous: True)
    raw = ALS(acceleration="ncg", **{**params, "iterations": 50, "tol": 0.0}).fit(C)
    assert rises(raw).sum() > 5


def test_with_the_cg_solver_it_reaches_the_exact_solvers_fixed_point():
    """``solver="cg"``: the balanced sweep that preconditions the conjugate gradients is a CG sweep
    (a few CG steps per row, warm-started), whose fixed points are the exact solver's, so the
    accelerated fit ends where plain exact ALS does, with an objective that never rises."""
    C = data(0)
    params = dict(factors=4, regularization=0.1, tol=1e-14, random_state=0)
    plain = ALS(iterations=20000, **params).fit(C)
    fast = ALS(iterations=2000, acceleration="ncg", solver="cg", cg_steps=2, **params).fit(C)
    assert fast.history_[-1]["objective"] == pytest.approx(plain.history_[-1]["objective"], rel=1e-9)
    assert fast.train_iterations_ <= plain.train_iterations_ / 4
    assert not rises(fast).any() and fixed_point(fast, C)
