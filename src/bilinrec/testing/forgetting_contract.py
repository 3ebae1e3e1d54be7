"""The forgetting contract: one pytest mixin checked against every model that forgets.

Subclass :class:`ForgettingContract` in a ``Test...`` class; one class checks one ``method`` of
one model. Hooks (``data`` is whatever :meth:`~ForgettingContract.make_data` returns)::

    method = "exact"                      # the forget method under test
    users_argument = "users"              # the argument that names users (errors must name it)
    retraining_tolerance = 1e-6           # largest retraining_distance the model promises, or
                                          # None when it promises no closeness to retraining (DP)
    def make_data(self): ...              # small synthetic training data
    def fit(self, data): ...              # a fitted model
    def forget(self, model, data, users): ...         # model.forget(...) -> Forgetting
    def retrain(self, data, users): ...               # a model fitted without those users' records
    def retraining_distance(self, model, retrained, data, users): ...   # in the model's measure
    def parameters(self, model): ...      # the fitted parameters (arrays) that predictions use
    def history_scores(self, model, data, user): ...  # (scores of its records, of comparable others)
    def records_of(self, data, users): ...            # how many records the users hold
    def ledger_records(self, model, data): ...        # how many records the model says it forgot
    n_users(data), forgotten_user (an id with records)
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from ..models.forgetting import ForgetRecord, Forgetting
from .estimator_contract import same_value


def chance_auc(members: np.ndarray, others: np.ndarray) -> float:
    """The probability that a member scores above a non-member, ties counted half."""
    members, others = np.asarray(members, dtype=np.float64), np.asarray(others, dtype=np.float64)
    above = (members[:, None] > others[None, :]).mean()
    ties = (members[:, None] == others[None, :]).mean()
    return float(above + 0.5 * ties)


class ForgettingContract:
    """What ``forget`` promises (see the module docstring for the hooks)."""

    method: str
    users_argument: str = "users"
    forgotten_user: int = 1
    retraining_tolerance: float | None = None
    #: How far from 0.5 the forgotten user's own-history AUC may be, and how far above 0.5 the
    #: untouched model's must be (else the data cannot show that anything was forgotten).
    chance_tolerance: float = 0.0
    readable_margin: float = 0.1

    # -- hooks -----------------------------------------------------------------------------
    def make_data(self) -> Any:
        raise NotImplementedError

    def fit(self, data: Any) -> Any:
        raise NotImplementedError

    def forget(self, model: Any, data: Any, users: Any) -> Forgetting:
        raise NotImplementedError

    def retrain(self, data: Any, users: list[int]) -> Any:
        raise NotImplementedError

    def retraining_distance(self, model: Any, retrained: Any, data: Any, users: list[int]) -> float:
        raise NotImplementedError

    def parameters(self, model: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def history_scores(self, model: Any, data: Any, user: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def records_of(self, data: Any, users: list[int]) -> int:
        raise NotImplementedError

    def ledger_records(self, model: Any, data: Any) -> int:
        raise NotImplementedError

    def n_users(self, data: Any) -> int:
        raise NotImplementedError

    # -- fixtures (one fit and one forget per class) ---------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls):
        """``(model, data)``: the model fitted once per class."""
        hooks = cls()
        data = hooks.make_data()
        return hooks.fit(data), data

    @pytest.fixture(scope="class")
    @classmethod
    def forgotten(cls, fitted):
        """``(Forgetting, parameters before, get_params before)`` of forgetting ``forgotten_user``."""
        hooks, (model, data) = cls(), fitted
        before = {k: v.copy() for k, v in hooks.parameters(model).items()}
        params = copy.deepcopy(model.get_params())
        return hooks.forget(model, data, [cls.forgotten_user]), before, params

    # -- the contract ----------------------------------------------------------------------
    def test_forget_returns_a_new_model_and_leaves_self_unchanged(self, fitted, forgotten):
        model, _ = fitted
        result, before, params = forgotten
        assert isinstance(result, Forgetting) and isinstance(result.record, ForgetRecord)
        assert result.model is not model
        for name, value in self.parameters(model).items():
            np.testing.assert_array_equal(value, before[name], err_msg=f"forget changed the model's {name}")
        assert same_value(model.get_params(), params), "forget changed a parameter of the model"

    def test_forgetting_matches_retraining_within_the_stated_tolerance(self, fitted, forgotten):
        if self.retraining_tolerance is None:
            pytest.skip(f"{self.method!r} promises a privacy guarantee, not closeness to retraining")
        model, data = fitted
        users = [self.forgotten_user]
        retrained = self.retrain(data, users)
        distance = self.retraining_distance(forgotten[0].model, retrained, data, users)
        assert distance <= self.retraining_tolerance, (
            f"forgetting is {distance:.3g} from retraining, over the stated {self.retraining_tolerance:.3g}")
        untouched = self.retraining_distance(model, retrained, data, users)
        assert untouched > self.retraining_tolerance, (
            f"the untouched model is already within the tolerance of retraining ({untouched:.3g}): "
            "the data cannot tell forgetting from doing nothing")

    def test_the_forgotten_users_history_ranks_at_chance(self, fitted, forgotten):
        model, data = fitted
        user = self.forgotten_user
        readable = chance_auc(*self.history_scores(model, data, user))
        assert readable >= 0.5 + self.readable_margin, (
            f"the untouched model ranks the user's own history at AUC {readable:.3f}: the data cannot show forgetting")
        auc = chance_auc(*self.history_scores(forgotten[0].model, data, user))
        assert abs(auc - 0.5) <= self.chance_tolerance, f"own-history AUC after forgetting is {auc:.4f}, not chance"

    def test_forgetting_nothing_changes_nothing(self, fitted):
        model, data = fitted
        new, record = self.forget(model, data, [])
        assert new is not model and record.records == 0 and record.users == []
        for name, value in self.parameters(model).items():
            np.testing.assert_array_equal(self.parameters(new)[name], value, err_msg=f"{name} changed")
        assert self.ledger_records(new, data) == self.ledger_records(model, data)

    def test_bad_user_ids_are_refused_by_name(self, fitted):
        model, data = fitted
        n = self.n_users(data)
        for bad in ([n], [-1], [[0, 1]], [0.5], ["a"]):
            with pytest.raises(ValueError, match=self.users_argument):
                self.forget(model, data, bad)

    def test_the_record_and_ledger_say_what_was_done(self, fitted, forgotten):
        model, data = fitted
        (new, record), _, _ = forgotten
        users = [self.forgotten_user]
        assert record.method == self.method and record.model
        assert record.users == users
        assert record.records == self.records_of(data, users) > 0
        assert record.seconds >= 0 and record.gap_measure
        if record.bound is not None:
            assert record.certified == (record.gap <= record.bound)
        json.dumps(record.to_dict(), default=float)  # the record can be written as it is
        assert self.ledger_records(model, data) == 0
        assert self.ledger_records(new, data) == record.records
