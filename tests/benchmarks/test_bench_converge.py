"""The convergence benchmark's cost count: every racer pays for each piece of work its records name."""

import math

import pytest


@pytest.fixture
def bench(load_bench):
    return load_bench("bench_converge")


UNITS = {"obj": 0.05, "bal": 0.1, "and_joint": 0.04, "and_items": 0.02, "ncg": 0.2}


def test_an_ncg_iteration_costs_its_sweep_balancing_objectives_and_extra_work(bench):
    start = {"phase": "start", "objective": 10.0, "rows_solved": 0, "objectives": 1}
    step = {"phase": "sweep", "objective": 9.0, "rows_solved": 100, "objectives": 2, "balanced": 1}
    confirm = {"phase": "sweep", "objective": 8.0, "rows_solved": 100, "objectives": 1, "balanced": 0}
    sweeps, seconds = bench.cost_to([start, step, confirm], [1.5, 2.5], 100, UNITS, "ncg", target=8.5)
    assert sweeps == pytest.approx((0.05 + 1 + 2 * 0.05 + 0.1 + 0.2) + (1 + 0.05 + 0.2))
    assert seconds == 2.5
    # never within the target: no cost at all, not the cost so far
    assert all(math.isnan(v) for v in bench.cost_to([start, step], [1.5], 100, UNITS, "ncg", target=1.0))


def test_a_cg_racers_sweeps_are_priced_at_the_cg_sweeps_cost(bench):
    start = {"phase": "start", "objective": 10.0, "rows_solved": 0, "objectives": 1}
    step = {"phase": "sweep", "objective": 9.0, "rows_solved": 100, "objectives": 1}
    exact, _ = bench.cost_to([start, step], [1.0], 100, UNITS, None, target=9.5)
    cg, _ = bench.cost_to([start, step], [1.0], 100, UNITS, None, target=9.5, row_solve=0.4)
    assert exact == pytest.approx(0.05 + 1 + 0.05) and cg == pytest.approx(0.05 + 0.4 + 0.05)
