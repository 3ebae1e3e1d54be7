"""The one forgetting interface shared by every model: ``model.forget(...) -> Forgetting``.

Every estimator that can forget (``ALS``, ``AMHTLRS``, ``DPAMHTLRS``) has a method

    forget(data..., *, users=None, <model-specific selection>, method=..., ...) -> Forgetting

that leaves ``self`` and the data untouched and returns a NEW model together with a
:class:`ForgetRecord`: what was forgotten, how, and how far the new model stands from the fixed
point that retraining on the remaining data would reach (``gap``), with the bound it was held to
(``bound``) when the method certifies one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

#: How a model forgot: re-fitted to the retraining fixed point (``exact``), stopped once a
#: residual certificate held (``certified``), or left to the differential-privacy guarantee with
#: the departing user's own parameters deleted (``dp``).
FORGET_METHODS = ("exact", "certified", "dp")


@dataclass
class ForgetRecord:
    """What one ``forget`` call did.

    ``users``: users whose whole history was forgotten; ``records``: number of forgotten
    records (ALS cells or AMHT-LRS samples) in total; ``gap``: the model's distance from the
    retraining fixed point on the remaining data, in the model's own measure (``gap_measure``
    says which); ``bound``: the value ``gap`` was certified not to exceed (``None`` when no
    certificate is claimed); ``rows_touched``: parameter rows re-solved; ``seconds``: wall time
    of the forget (timing only, never part of a verdict).
    """

    model: str
    method: str
    users: list[int]
    records: int
    gap: float
    gap_measure: str
    bound: float | None = None
    rows_touched: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def certified(self) -> bool:
        """True when a bound was claimed and the gap is within it."""
        return self.bound is not None and self.gap <= self.bound

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (for CLI output and workflow tables)."""
        out = asdict(self)
        out["certified"] = self.certified
        return out


class Forgetting(NamedTuple):
    """The result of ``forget``: the new model and the record of what it forgot."""

    model: Any
    record: ForgetRecord


def check_forget_method(method: str, allowed: tuple[str, ...]) -> str:
    """Validate ``method`` against the methods a model offers, naming the argument."""
    if method not in allowed:
        raise ValueError(f"method must be one of {', '.join(map(repr, allowed))}; got {method!r}")
    return method
