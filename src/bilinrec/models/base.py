"""The base of every estimator in :mod:`bilinrec.models`: parameters derived from ``__init__``.

The scikit-learn convention: ``__init__`` only stores its arguments, under their own names, and
checks nothing; ``fit`` validates them (errors name the parameter) and returns ``self``; what
``fit`` learns is kept in attributes whose names end in ``_``; no method changes a parameter
(only :meth:`Estimator.set_params` does). :meth:`~Estimator.get_params`,
:meth:`~Estimator.set_params`, :meth:`~Estimator.clone` and ``repr`` are derived from the
signature of ``__init__``, so a new parameter needs no other edit. :mod:`bilinrec.testing`
checks these rules against any estimator.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np


class NotFittedError(RuntimeError):
    """An estimator was used (predict, forget, save, ...) before it was fitted."""


class Estimator:
    """Parameter handling shared by every estimator (see the module docstring)."""

    @classmethod
    def _param_names(cls) -> tuple[str, ...]:
        """The parameters of ``__init__`` in order (``*args`` and ``**kwargs`` are not allowed)."""
        if cls.__init__ is object.__init__:
            return ()
        names = []
        for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must name every parameter; *{name} is not allowed")
            names.append(name)
        return tuple(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as given. ``deep`` is accepted for scikit-learn; no
        estimator here takes another estimator as a parameter, so it changes nothing."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor arguments (checked at the next ``fit``); returns ``self``."""
        names = self._param_names()
        for name in params:
            if name not in names:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(names)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def clone(self) -> Estimator:
        """A new, unfitted estimator with (deep copies of) the same parameters."""
        return type(self)(**{name: copy.deepcopy(value) for name, value in self.get_params().items()})

    def _check_fitted(self, attribute: str, action: str) -> None:
        """Raise :class:`NotFittedError` naming ``action`` unless ``attribute`` is set."""
        if getattr(self, attribute, None) is None:
            raise NotFittedError(f"this {type(self).__name__} instance is not fitted yet; call fit before {action}")

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={_short_repr(value)}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {value.dtype} {value.shape}>"
    return repr(value)
