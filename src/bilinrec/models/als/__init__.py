"""ALS for bi-linear recommenders and exact unlearning (Unlearn-ALS).

- :mod:`.model`: the :class:`ALS` estimator (fit, unlearn, predict, save/load);
- :mod:`.cells`: the stored cells of a problem and input checks;
- :mod:`.deletions`: deletion sets and the data each unlearning mode trains on;
- :mod:`.weighting`: data-derived confidences (BM25, linear, scale) that unlearning recomputes;
- :mod:`.solvers`: the exact batched row solver; :mod:`.cg`: the conjugate-gradient kernel;
- :mod:`.recommend`: top-k, similar items/users and recommendations from factors;
- :mod:`.audit`: the forgetting audit (own-history and membership-inference AUC against retraining's).
"""

from .cells import FEEDBACKS, MODES, SOLVERS
from .deletions import (
    ModifiedData,
    apply_deletions,
    as_deletions,
    pairs_digest,
    stored_pairs,
    user_history,
)
from .model import ALS
from .recommend import recommend, similar, top_k
from .weighting import SCHEMES, Weighting, as_weighting, bm25_weight

__all__ = [
    "ALS",
    "FEEDBACKS",
    "MODES",
    "SCHEMES",
    "SOLVERS",
    "ModifiedData",
    "Weighting",
    "apply_deletions",
    "as_deletions",
    "as_weighting",
    "bm25_weight",
    "pairs_digest",
    "recommend",
    "similar",
    "stored_pairs",
    "top_k",
    "user_history",
]
