"""The estimator contract: one pytest mixin checked against every estimator.

Subclass :class:`EstimatorContract` in a ``Test...`` class and define::

    class TestMyModel(EstimatorContract):
        estimator = MyModel

        def params(self):            # small, valid parameters (with random_state if it has one)
            return {"rank": 2, "random_state": 0}

        def fit_data(self):          # the arguments of fit, made here (small and synthetic)
            return FitData((X, y, users))

        def use(self, model, data):  # what a fitted model produces (predictions, factors, ...)
            return model.predict(data.args[0], data.args[2])

        bad_params = {"rank": -1}    # each value makes fit raise an error naming the parameter

        def bad_inputs(self, data):  # {argument name: FitData whose fit must raise naming it}
            return {"users": FitData((X, y, users[:-1]))}

``use`` on an unfitted estimator must raise :class:`bilinrec.models.base.NotFittedError`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, NamedTuple

import numpy as np
import pytest

from ..models.base import NotFittedError


class FitData(NamedTuple):
    """Positional and keyword arguments of ``fit``."""

    args: tuple
    kwargs: dict = {}


def fit(model: Any, data: FitData) -> Any:
    """``model.fit(*data.args, **data.kwargs)``."""
    return model.fit(*data.args, **data.kwargs)


def same_value(a: Any, b: Any) -> bool:
    """Equality by value for parameters: arrays element-wise, containers and plain objects
    recursively, numpy generators by state."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if type(a).__eq__ is object.__eq__ and hasattr(a, "__dict__"):
        return same_value(vars(a), vars(b))
    return bool(a == b)


def raises_naming(name: str, call, *args, **kwargs) -> None:
    """``call(*args, **kwargs)`` must raise ValueError or TypeError whose message names ``name``."""
    try:
        call(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        assert name in str(exc), f"the error for a bad {name} does not name it: {exc}"
    else:
        pytest.fail(f"a bad {name} was accepted")


def _outputs_equal(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_outputs_equal(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


class EstimatorContract:
    """The scikit-learn estimator convention, checked (see the module docstring for the hooks)."""

    estimator: type
    #: Parameter name -> a bad value; fit must raise ValueError or TypeError naming the parameter.
    bad_params: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {}

    def fit_data(self) -> FitData:
        raise NotImplementedError("define fit_data(): the arguments of fit")

    def use(self, model: Any, data: FitData) -> Any:
        raise NotImplementedError("define use(model, data): what a fitted model produces")

    def bad_inputs(self, data: FitData) -> dict[str, FitData]:
        return {}

    def build(self, **override: Any) -> Any:
        return self.estimator(**(self.params() | override))

    # -- parameters ------------------------------------------------------------------------
    def test_init_only_stores_its_arguments(self):
        params = self.params()
        model = self.estimator(**params)
        signature = inspect.signature(self.estimator)
        assert set(vars(model)) == set(signature.parameters), (
            f"__init__ must store exactly its arguments; extra {sorted(set(vars(model)) - set(signature.parameters))}, "
            f"missing {sorted(set(signature.parameters) - set(vars(model)))}")
        for name, parameter in signature.parameters.items():
            expected = params[name] if name in params else parameter.default
            assert getattr(model, name) is expected, f"__init__ must store {name} as given, unchanged"

    def test_get_params_keys_are_the_signature(self):
        names = list(inspect.signature(self.estimator).parameters)
        kinds = [p.kind for p in inspect.signature(self.estimator).parameters.values()]
        assert inspect.Parameter.VAR_POSITIONAL not in kinds and inspect.Parameter.VAR_KEYWORD not in kinds
        assert list(self.build().get_params()) == names

    def test_randomness_is_named_random_state(self):
        names = set(inspect.signature(self.estimator).parameters)
        assert not names & {"seed", "rng", "random_seed"}, "name the seed of the estimator's randomness random_state"

    def test_set_params_sets_known_and_refuses_unknown_names(self):
        model = self.build()
        params = self.params()
        assert model.set_params(**params) is model
        assert all(getattr(model, name) is value for name, value in params.items())
        with pytest.raises(ValueError, match="no_such_parameter"):
            model.set_params(no_such_parameter=1)

    def test_bad_parameters_are_stored_then_refused_by_fit_by_name(self):
        data = self.fit_data()
        for name, value in self.bad_params.items():
            model = self.build(**{name: value})  # no validation in __init__
            raises_naming(name, fit, model, data)

    # -- fitting ---------------------------------------------------------------------------
    def test_fit_returns_self(self):
        model = self.build()
        assert fit(model, self.fit_data()) is model

    def test_unfitted_use_raises_not_fitted_error(self):
        with pytest.raises(NotFittedError, match="fit"):
            self.use(self.build(), self.fit_data())

    def test_fitted_attributes_end_with_underscore(self):
        model = self.build()
        before = set(vars(model))
        fit(model, self.fit_data())
        added = [name for name in set(vars(model)) - before if not name.startswith("_")]
        assert added, "fit must set fitted attributes"
        assert all(name.endswith("_") for name in added), f"fitted attributes must end in '_': {sorted(added)}"

    def test_methods_leave_the_parameters_unchanged(self):
        model = self.build()
        given = model.get_params()
        snapshot = copy.deepcopy(given)
        data = self.fit_data()
        self.use(fit(model, data), data)
        after = model.get_params()
        for name, value in given.items():
            assert after[name] is value, f"{name} was replaced by fit or use"
            assert same_value(after[name], snapshot[name]), f"{name} was changed in place by fit or use"

    def test_fit_is_deterministic_under_random_state(self):
        data = self.fit_data()
        one, two = fit(self.build(), data), fit(self.build(), data)
        assert _outputs_equal(self.use(one, data), self.use(two, data))

    def test_clone_round_trip(self):
        data = self.fit_data()
        model = fit(self.build(), data)
        twin = model.clone()
        assert type(twin) is type(model) and twin is not model
        assert same_value(twin.get_params(), model.get_params())
        with pytest.raises(NotFittedError):
            self.use(twin, data)
        assert _outputs_equal(self.use(fit(twin, data), data), self.use(model, data))

    def test_bad_inputs_are_refused_by_name(self):
        for argument, data in self.bad_inputs(self.fit_data()).items():
            raises_naming(argument, fit, self.build(), data)
