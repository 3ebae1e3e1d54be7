"""AMHT-LRS: every user's parameters are a shared low-rank part plus a user-specific sparse part.

- :mod:`.amht`: the :class:`AMHTLRS` estimator; :mod:`.data`, :mod:`.statistics`,
  :mod:`.user_step`: its data layout, shared statistics (the aggregator hook) and per-user step;
  :mod:`.user_parameters`: every user's head and sparse part; :mod:`.forget`: forgetting by warm
  re-fit; :mod:`.io`: model files;
- :mod:`.fused_user_step`, :mod:`.segment_kernels`: the Numba kernels of the per-user step and of the
  per-user segment sums and statistics; :mod:`.compiled`: whether and on how many threads they run;
- :mod:`.baselines`: low-rank-only, sparse-only, global, local, fine-tuning and oracle baselines;
- :mod:`.dp_amht`: :class:`DPAMHTLRS`; :mod:`.dp_global`: :class:`DPGlobalModel`; :mod:`.release`: the
  privacy model and release modes; :mod:`.mechanism`: clipping and noise; :mod:`.accounting`: budgets
  and calibration with dp-accounting;
- :mod:`.synthetic`: realizable synthetic problems; :mod:`.metrics`: parameter-recovery metrics;
- :mod:`.audit`: the empirical privacy audit of the released statistics.
"""

from .accounting import (
    DPForgettingBound,
    GroupPrivacy,
    PrivacyBudget,
    accounting_cache,
    calibrate_noise_multiplier,
    compute_epsilon,
    dp_forgetting_bound,
    gaussian_epsilon,
    group_privacy,
    load_accounting_cache,
    release_event,
    training_epsilon,
    training_event,
)
from .amht import AMHTLRS, UserFit
from .data import LRSData, prepare_data
from .dp_amht import DPAMHTLRS
from .dp_global import DPGlobalModel, clipped_global_statistics
from .mechanism import (
    ClipBounds,
    GaussianAggregator,
    default_clip_bounds,
    segment_gram_norms,
)
from .release import NON_PRIVATE, RELEASE_LABELS, RELEASE_MODES
from .statistics import (
    MomentStatistics,
    NormalEquationStatistics,
    SumAggregator,
    moment_statistics,
    normal_equation_statistics,
)

__all__ = [
    "AMHTLRS",
    "ClipBounds",
    "DPAMHTLRS",
    "DPForgettingBound",
    "DPGlobalModel",
    "GaussianAggregator",
    "GroupPrivacy",
    "LRSData",
    "MomentStatistics",
    "NON_PRIVATE",
    "NormalEquationStatistics",
    "PrivacyBudget",
    "RELEASE_LABELS",
    "RELEASE_MODES",
    "SumAggregator",
    "UserFit",
    "accounting_cache",
    "calibrate_noise_multiplier",
    "clipped_global_statistics",
    "compute_epsilon",
    "default_clip_bounds",
    "dp_forgetting_bound",
    "gaussian_epsilon",
    "group_privacy",
    "load_accounting_cache",
    "moment_statistics",
    "normal_equation_statistics",
    "prepare_data",
    "release_event",
    "segment_gram_norms",
    "training_epsilon",
    "training_event",
]
