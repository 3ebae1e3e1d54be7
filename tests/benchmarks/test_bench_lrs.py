"""The AMHT-LRS benchmark reports its slowest run next to its fastest and checks the target on the slowest."""

import pytest


@pytest.fixture
def bench(load_bench):
    return load_bench("bench_lrs")


def _run(cpu, wall, peak):
    return {"users": 10, "samples": 200, "floor_flops": 2e9, "cpu_per_round": cpu, "s_per_round": wall,
            "peak_rss_gb": peak, "final_loss": 0.0}


def test_every_run_counts_the_slowest_gives_the_worst_ratio(bench):
    runs = [_run(1.5, 0.5, 1.0), _run(2.5, 0.9, 1.2), _run(2.0, 0.6, 1.1)]
    row = bench.summarise(runs, rate=1e9)  # floor: 2 s
    assert row["floor_s"] == pytest.approx(2.0)
    assert row["floor_ratio_best"] == pytest.approx(0.75)
    assert row["floor_ratio_worst"] == pytest.approx(1.25)
    assert (row["s_per_round_best"], row["s_per_round_worst"]) == (0.5, 0.9)
    assert row["peak_rss_gb"] == 1.2


def test_a_single_run_is_both_best_and_worst(bench):
    row = bench.summarise([_run(3.0, 1.0, 1.0)], rate=2e9)
    assert row["floor_ratio_best"] == row["floor_ratio_worst"] == pytest.approx(3.0)
