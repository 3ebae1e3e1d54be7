"""Paper A in the linear setting: AMHT-LRS, its baselines and the synthetic experiments.

The design of the per-round shared statistics (the hook of the private variant) is
documented at the top of :mod:`bilinrec.lrs.amht`.
"""

from .amht import (
    AMHTLRS,
    LRSData,
    MomentStatistics,
    NormalEquationStatistics,
    SumAggregator,
    UserFit,
    moment_statistics,
    normal_equation_statistics,
    prepare_data,
)

__all__ = [
    "AMHTLRS",
    "LRSData",
    "MomentStatistics",
    "NormalEquationStatistics",
    "SumAggregator",
    "UserFit",
    "moment_statistics",
    "normal_equation_statistics",
    "prepare_data",
]
