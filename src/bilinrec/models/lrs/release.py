"""The privacy model and release modes of the DP estimators (:mod:`.dp_amht`, :mod:`.dp_global`).

Privacy model (user-level, joint DP / "billboard" model)
--------------------------------------------------------
Neighbouring data sets differ by adding or removing *all* samples of one user. The only
quantities released are the shared statistics: the initialisation moment matrix
``M = sum_i C_i`` and, in each round, the U-step normal equations ``(A, b) = sum_i (A_i, b_i)``
(see :mod:`bilinrec.models.lrs.statistics`); everything the server computes (``U``) is post-processing of
them. Each user's head ``w_i`` and sparse part ``b_i`` are computed from the released ``U`` and
that user's own data and are never released, so by the billboard lemma the whole output is
joint-DP with the (epsilon, delta) of the released statistics.

Mechanism: every user's contribution to each released statistic is scaled to a norm of at
most its clip bound (Frobenius norm for matrices, Euclidean for vectors), so adding or
removing a user moves each statistic by at most that bound; Gaussian noise with standard
deviation ``noise_multiplier * bound`` is added (symmetric noise ``(G + G^T) / 2`` for the
symmetric matrices ``M`` and ``A``, which is exactly a Gaussian mechanism on the vector
``(diag, sqrt(2) * upper triangle)`` whose norm is the Frobenius norm). A release of ``s``
statistics together is therefore one Gaussian mechanism with noise multiplier
``noise_multiplier / sqrt(s)`` on the stacked, bound-normalised statistics. Optionally every
release uses a fresh Poisson sample of users (rate ``q``). All releases are composed with
Google's ``dp-accounting`` (PLD accountant by default, RDP on request); for a target budget
the noise multiplier is calibrated with ``dp_accounting.calibrate_dp_mechanism`` (bracketing
and bisection), and the achieved epsilon is recomputed and reported.

Release modes (``mode=``)
-------------------------
``"private"`` (the default) is a genuine private release: the noise and the Poisson samples
come from a generator seeded with 128 bits of fresh OS entropy (:mod:`secrets`), never from
``random_state`` or any other public value; the fit runs exactly ``max_rounds`` rounds whatever
the data (no loss-based stopping, no identifiability abort, no warning listing empty users);
and the fitted object keeps no unnoised statistic of several users (no clipped fractions, no
training-loss history, no noise generator). ``"simulation"`` draws the noise from a generator
seeded with ``noise_seed`` so that utility curves are reproducible. Anyone who knows that seed
can recompute the noise and remove it (re-fitting with and without a target user reproduces
the released ``U`` exactly), so a simulation is *not* a private release, whatever its
``epsilon_`` says; it also keeps the diagnostics (``clipped_fraction_``, ``history_``).
``release_`` names the mode of a fit. See ``docs/privacy.md``."""

from __future__ import annotations

import math
import secrets

import numpy as np

from ...seeds import derive_seed
from .accounting import PrivacyBudget
from .mechanism import ClipBounds

#: Release modes: a genuine private release (secret noise) or a seeded simulation.
RELEASE_MODES = ("private", "simulation")
#: How every fit, table, figure and claim names each mode.
RELEASE_LABELS = {
    "private": "private release (secret noise)",
    "simulation": "simulation (seeded noise; not a private release)",
}
#: The label of a non-private fit (epsilon = inf).
NON_PRIVATE = "non-private"


def check_release_mode(mode: str, noise_seed: int | None) -> str:
    """``mode`` if it is a release mode and ``noise_seed`` fits it (clear error otherwise)."""
    if mode not in RELEASE_MODES:
        raise ValueError(f"mode must be one of {RELEASE_MODES}, got {mode!r}")
    if mode == "private" and noise_seed is not None:
        raise ValueError(
            "noise_seed is only allowed with mode='simulation': a private release draws its noise "
            "from fresh OS entropy (seeded noise can be recomputed and removed by anyone who knows the seed)"
        )
    if mode == "simulation" and (isinstance(noise_seed, bool) or not isinstance(noise_seed, (int, np.integer))):
        raise ValueError(f"mode='simulation' needs an integer noise_seed, got {noise_seed!r}")
    return mode


def noise_generator(mode: str, noise_seed: int | None) -> np.random.Generator:
    """The generator of the privacy noise and the Poisson samples, independent of any other
    randomness of a fit: 128 bits of OS entropy for ``"private"`` (never a public value),
    ``noise_seed`` for ``"simulation"`` (reproducible, therefore not private)."""
    if check_release_mode(mode, noise_seed) == "private":
        return np.random.default_rng(secrets.randbits(128))
    return np.random.default_rng(derive_seed(int(noise_seed), "dp-noise"))


def check_privacy(privacy: PrivacyBudget | None, clip: ClipBounds | None) -> PrivacyBudget:
    """The budget of a fit (``None``: non-private); a private one needs finite ``clip`` bounds."""
    if privacy is None:
        privacy = PrivacyBudget(math.inf, 0.5)
    if not isinstance(privacy, PrivacyBudget):
        raise TypeError(f"privacy must be a PrivacyBudget or None, got {type(privacy).__name__}")
    if privacy.is_private:
        if not isinstance(clip, ClipBounds):
            raise ValueError("clip must be a ClipBounds (see default_clip_bounds) when epsilon is finite")
        if any(math.isinf(getattr(clip, n)) for n in clip.__dataclass_fields__):
            raise ValueError("clip bounds must be finite when epsilon is finite")
    return privacy
