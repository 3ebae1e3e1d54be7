"""The forget part's ALS curve (bilinrec.experiments.forget.steps.als_forget_curve): certified and
exact forgetting against retraining, with the untouched model as negative control."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.experiments.forget.steps import FORGET_COLUMNS, als_forget_curve
from bilinrec.models.als import Weighting


def test_als_forget_curve_certifies_and_its_control_fails():
    X = sp.random(120, 80, density=0.08, random_state=3, format="csr")
    X.data[:] = 1.0
    params = dict(factors=6, regularization=0.1, iterations=300, tol=1e-6, random_state=0,
                  weighting=Weighting(scheme="linear", alpha=10.0))
    curve = als_forget_curve(X, params, n_forgotten=[1, 5], seed=2, tolerance=0.15)  # over the trained level (~0.1)
    assert tuple(curve.columns) == FORGET_COLUMNS
    assert sorted(set(curve["method"])) == ["certified", "exact", "original", "retrain"] and set(curve["model"]) == {"als"}
    certified = curve[curve["method"] == "certified"]
    assert certified["certified"].all() and (certified["gap"] <= certified["bound"]).all()
    # the untouched model is far from the fixed point on the reduced data: the certificate means something
    assert (curve["control_gap"] > 10 * certified["bound"].max()).all()
    assert (curve.loc[curve["method"] == "retrain", "iterations"] >= 1).all()
    assert np.isfinite(curve["gap"]).all()
    # the AMHT-LRS refit distance and the DP group guarantee do not apply to ALS rows
    assert curve[["refit_distance", "control_refit_distance", "group_size", "group_epsilon"]].isna().all().all()


def test_als_forget_curve_audits_every_row_against_retraining():
    X = sp.random(60, 40, density=0.15, random_state=4, format="csr")
    X.data[:] = 1.0
    params = {"factors": 4, "regularization": 0.3, "iterations": 60, "tol": 1e-7, "random_state": 0,
              "weighting": Weighting(scheme="linear", alpha=10.0)}
    curve = als_forget_curve(X, params, n_forgotten=[2], seed=1, methods=("exact", "certified"), audit_retrains=2,
                             controls=("shrink", "10sweep", "frozen"),
                             frozen_weighting=Weighting(scheme="bm25", scale=5.0, K1=100.0, B=0.9))
    assert tuple(curve.columns) == FORGET_COLUMNS
    passed = curve.set_index("method")["audit_passed"].to_dict()
    assert passed == {"exact": True, "certified": True, "retrain": True, "original": False, "control_shrink": False,
                      "control_10sweep": True, "control_frozen": True}
    rows = curve.set_index("method")
    assert rows.loc["exact", "own_history_auc"] == rows.loc["retrain", "retrain_own_history_auc"] == 0.5
    assert rows.loc["certified", "own_history_auc"] == 0.5
    assert rows.loc["original", "own_history_auc"] > 0.8 and rows.loc["control_shrink", "mia_auc"] > 0.8
    assert rows.loc["control_frozen", "gap"] > rows.loc["retrain", "gap"]
    with pytest.raises(ValueError, match="controls: 'frozen' needs a data-dependent frozen_weighting"):
        als_forget_curve(X, params, n_forgotten=[1], seed=1, controls=("frozen",))
    with pytest.raises(ValueError, match="controls: unknown control"):
        als_forget_curve(X, params, n_forgotten=[1], seed=1, controls=("shrunk",))
