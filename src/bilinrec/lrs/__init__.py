"""Paper A in the linear setting: AMHT-LRS, its baselines and the synthetic experiments.

The design of the per-round shared statistics (the hook of the private variant) is
documented at the top of :mod:`bilinrec.lrs.amht`, whose ``__all__`` is this package's API.
"""

from . import amht
from .amht import *  # noqa: F403 - re-export exactly amht.__all__

__all__ = list(amht.__all__)
