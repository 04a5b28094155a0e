"""Pareto front and exact 2-D hypervolume against hand-computed examples."""
import numpy as np
import pytest

from kdnas.search.pareto import hypervolume, hypervolume_curve, pareto_front

POINTS = [(0.9, 10.0), (0.8, 5.0), (0.7, 20.0)]
REF = (0.5, 30.0)


def test_pareto_front_mask():
    # (0.7, 20) is dominated by (0.9, 10): lower score and higher latency. The other two trade off.
    assert pareto_front(POINTS).tolist() == [True, True, False]


def test_pareto_front_keeps_duplicates_and_drops_weakly_dominated():
    points = [(0.8, 5.0), (0.8, 5.0), (0.8, 6.0), (0.7, 5.0)]
    # The two copies of (0.8, 5) dominate neither each other; (0.8, 6) is slower at equal score and
    # (0.7, 5) is worse at equal latency, so both are dominated.
    assert pareto_front(points).tolist() == [True, True, False, False]


def test_pareto_front_empty():
    assert pareto_front([]).tolist() == []


def test_hypervolume_hand_example():
    # Sweep latency from the fastest point to the reference latency 30:
    #   5 <= latency < 10: only (0.8, 5) dominates -> height 0.8 - 0.5 = 0.3, width 5  -> 1.5
    #   10 <= latency < 30: (0.9, 10) is best     -> height 0.9 - 0.5 = 0.4, width 20 -> 8.0
    #   (0.7, 20) lies inside (0.9, 10)'s rectangle and adds nothing.
    # Total 1.5 + 8.0 = 9.5.
    assert hypervolume(POINTS, REF) == pytest.approx(9.5)


def test_hypervolume_single_point_and_outside_reference():
    # One rectangle: (0.9 - 0.5) x (30 - 10) = 8.0.
    assert hypervolume([(0.9, 10.0)], REF) == pytest.approx(8.0)
    # A score at or below the reference, or a latency at or above it, dominates nothing.
    assert hypervolume([(0.5, 10.0), (0.9, 30.0), (0.4, 40.0)], REF) == 0.0
    assert hypervolume([], REF) == 0.0


def test_hypervolume_order_invariant_and_equals_grid_estimate():
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(0.4, 1.0, 12), rng.uniform(1.0, 35.0, 12)])
    exact = hypervolume(points, REF)
    assert hypervolume(points[::-1], REF) == pytest.approx(exact)
    assert hypervolume(points[pareto_front(points)], REF) == pytest.approx(exact)
    # Midpoint-grid estimate of the dominated area as an independent check.
    s = np.linspace(REF[0], 1.0, 601)[:-1] + (1.0 - REF[0]) / 1200
    lat = np.linspace(0.0, REF[1], 601)[:-1] + REF[1] / 1200
    grid_s, grid_l = np.meshgrid(s, lat, indexing="ij")
    covered = ((points[:, 0] >= grid_s[..., None]) & (points[:, 1] <= grid_l[..., None])).any(-1)
    estimate = covered.mean() * (1.0 - REF[0]) * REF[1]
    assert exact == pytest.approx(estimate, rel=0.02)


def test_hypervolume_curve_pairs_and_trial_dicts():
    # First point alone: 8.0 (above); adding (0.8, 5): 9.5; adding the dominated (0.7, 20): still 9.5.
    assert hypervolume_curve(POINTS, REF) == pytest.approx([8.0, 9.5, 9.5])
    trials = [{"score": s, "latency_ms": lat, "arch": "x"} for s, lat in POINTS]
    assert hypervolume_curve(trials, REF) == pytest.approx([8.0, 9.5, 9.5])
    assert hypervolume_curve([], REF) == []
