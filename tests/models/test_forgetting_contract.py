"""The shipped forgetting contract (:mod:`bilinrec.testing`) run against every model that forgets:
ALS (certified and exact), AMHT-LRS (exact) and DP-AMHT-LRS (dp and exact)."""

import warnings

import numpy as np

from bilinrec.models.als import ALS, apply_deletions, user_history
from bilinrec.models.lrs import AMHTLRS, DPAMHTLRS, PrivacyBudget, default_clip_bounds
from bilinrec.models.lrs.synthetic import make_problem
from bilinrec.seeds import derive_seed
from bilinrec.testing import ForgettingContract
from bilinrec.testing.data import planted_implicit


# -- ALS ---------------------------------------------------------------------------------------
class ALSForgetting(ForgettingContract):
    """ALS on a small planted matrix, regularised enough that forgetting and a retrain from
    scratch reach the same fixed point (so their scores can be compared)."""

    params = dict(factors=2, regularization=1.0, iterations=300, tol=1e-14, random_state=0)
    #: Relative Frobenius distance of the score matrices U V^T from the retrained model's.
    retraining_tolerance = 1e-6
    options = {}

    def make_data(self):
        return planted_implicit(n_users=40, n_items=30, rank=2, density=0.3, seed=0)

    def fit(self, data):
        return ALS(**self.params).fit(data)

    def forget(self, model, data, users):
        return model.forget(data, users=users, method=self.method, **self.options)

    def retrain(self, data, users):
        return ALS(**self.params).fit(apply_deletions(data, user_history(data, users), "retrain").C)

    def retraining_distance(self, model, retrained, data, users):
        def scores(m):
            return m.user_factors_ @ m.item_factors_.T

        return float(np.linalg.norm(scores(model) - scores(retrained)) / np.linalg.norm(scores(retrained)))

    def parameters(self, model):
        return {"user_factors_": model.user_factors_, "item_factors_": model.item_factors_}

    def history_scores(self, model, data, user):
        scores = model.user_factors_[user] @ model.item_factors_.T
        own = data[user].toarray().ravel() != 0
        return scores[own], scores[~own]

    def records_of(self, data, users):
        return int(sum(data[u].nnz for u in users))

    def ledger_records(self, model, data):
        return len(model.deleted_pairs_)

    def n_users(self, data):
        return data.shape[0]


class TestALSCertified(ALSForgetting):
    method = "certified"
    options = {"tolerance": 1e-8}

    def test_the_certificate_holds(self, forgotten):
        (_, record), _, _ = forgotten
        assert record.bound == 1e-8 and record.certified and record.details["certificate"]["certified"]


class TestALSExact(ALSForgetting):
    method = "exact"


# -- AMHT-LRS and DP-AMHT-LRS ------------------------------------------------------------------
PROBLEM = make_problem(n_users=30, dim=6, rank=2, sparsity=1, samples=30, noise=0.05, seed=2)


class LRSForgetting(ForgettingContract):
    users_argument = "forget_users"

    def make_data(self):
        return PROBLEM

    def forget(self, model, data, users):
        return model.forget(data.X, data.y, data.users, forget_users=users, method=self.method)

    def remaining(self, data, users):
        keep = ~np.isin(data.users, users)
        return data.X[keep], data.y[keep], data.users[keep]

    def parameters(self, model):
        return {"U_": model.U_, "theta_": model.theta_}

    def history_scores(self, model, data, user):
        """How well the user's parameters explain a record, y <x, theta_u>: its own records
        against the other users' (a model that forgot the user explains neither)."""
        agreement = data.y * (data.X @ model.theta_[user])
        own = data.users == user
        return agreement[own], agreement[~own]

    def records_of(self, data, users):
        return int(np.isin(data.users, users).sum())

    def n_users(self, data):
        return data.n_users


class TestAMHTLRSExact(LRSForgetting):
    method = "exact"
    params = dict(rank=2, sparsity=1, u_solver="exact", tol=0.0, max_rounds=300)
    #: Relative prediction distance on the remaining samples (the refit measure of lrs.forget).
    retraining_tolerance = 1e-6

    def fit(self, data):
        return AMHTLRS(**self.params).fit(data.X, data.y, data.users)

    def retrain(self, data, users):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the forgotten users have no samples
            return AMHTLRS(**self.params).fit(*self.remaining(data, users), n_users=data.n_users)

    def retraining_distance(self, model, retrained, data, users):
        X, _, sample_users = self.remaining(data, users)
        reference = retrained.predict(X, sample_users)
        return float(np.linalg.norm(model.predict(X, sample_users) - reference) / np.linalg.norm(reference))

    def ledger_records(self, model, data):
        return int(np.isin(data.users, model.forgotten_users_).sum()) + len(model.forgotten_samples_)


class DPForgetting(LRSForgetting):
    forgotten_user = 0  # one whose records the untouched private model explains (own-history AUC 0.74)
    params = dict(rank=2, sparsity=1, privacy=PrivacyBudget(8.0, 1e-5), clip=default_clip_bounds(6, 30, 3.0, 1.0),
                  max_rounds=3, random_state=0, mode="simulation", noise_seed=5)

    def fit(self, data):
        return DPAMHTLRS(**self.params).fit(data.X, data.y, data.users)

    def ledger_records(self, model, data):
        inner = model.model_
        return int(np.isin(data.users, inner.forgotten_users_).sum()) + len(inner.forgotten_samples_)


class TestDPAMHTLRSKeepingTheRelease(DPForgetting):
    """``method="dp"`` keeps the released U under the DP guarantee: no closeness to retraining is claimed."""

    method = "dp"
    retraining_tolerance = None


class TestDPAMHTLRSExact(DPForgetting):
    """``method="exact"`` is a fresh private fit on the remaining data, with a noise seed derived
    from the model's and the selection: the very model retraining with that seed gives."""

    method = "exact"
    retraining_tolerance = 0.0

    def retrain(self, data, users):
        seed = derive_seed(self.params["noise_seed"], "forget", tuple(users), ())
        model = DPAMHTLRS(**(self.params | {"noise_seed": seed}))
        return model.fit(*self.remaining(data, users), n_users=data.n_users)

    def retraining_distance(self, model, retrained, data, users):
        return float(np.abs(model.theta_ - retrained.theta_).max())
