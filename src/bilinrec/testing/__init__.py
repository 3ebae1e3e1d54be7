"""Contract test suites shipped with bilinrec, to run against its estimators and your own.

- :class:`~.estimator_contract.EstimatorContract`: the estimator convention (parameters from
  the ``__init__`` signature, ``clone``, ``fit`` returns ``self``, fitted attributes end in
  ``_``, determinism under ``random_state``, errors that name the bad parameter or argument);
- :class:`~.forgetting_contract.ForgettingContract`: what ``forget`` promises (agreement with
  retraining within the model's tolerance, the forgotten user's history at chance, forgetting
  nothing changes nothing, bad ids refused by name, a record of what was done);
- :mod:`.data`: small synthetic data for the suites and the test suite.

Each suite is a pytest mixin: subclass it in a ``Test...`` class, fill in the few hooks it
documents, and pytest runs every check (as ``implicit`` runs one test mixin against every model).
The suites need ``pytest``. See ``docs/library.md``.
"""

from .estimator_contract import EstimatorContract, FitData
from .forgetting_contract import ForgettingContract

__all__ = ["EstimatorContract", "FitData", "ForgettingContract"]
