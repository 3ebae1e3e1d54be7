"""ALS for bi-linear recommenders and exact unlearning (Unlearn-ALS).

- :mod:`.model`: the :class:`ALS` estimator (fit, predict, objective), with its sweeps in
  :mod:`.sweeps` and its forgetting (unlearn, row residuals, forget) in :mod:`.forgetting`;
  :mod:`.options`: the values its settings take; :mod:`.io`: model files (save/load, checked entry by entry);
- :mod:`.cells`: the stored cells of a problem and input checks;
- :mod:`.chol`: the exact (Cholesky) row solver; :mod:`.cg`: the conjugate-gradient one;
  :mod:`.anderson`: accelerated sweeps; :mod:`.scores`: pair scores and the objective's cell terms;
  :mod:`.threads`: the compiled kernels' thread count;
- :mod:`.deletions`: deletion sets and the data each unlearning mode trains on;
- :mod:`.weighting`: data-derived confidences (BM25, linear, scale) that unlearning recomputes;
- :mod:`.forget`: ``ALS.forget`` and its certificate; :mod:`.residuals`: row residuals of the normal
  equations; :mod:`.certify`: the certified local forget, with :mod:`.reduced_cells` (cells of chosen
  rows on the reduced data) and :mod:`.row_grams` (cached cell Grams); :mod:`.fingerprints`: content
  hashes a certificate names;
- :mod:`.recommend`: top-k, similar items/users and recommendations from factors;
- :mod:`.audit`: the forgetting audit (own-history and membership-inference AUC against retraining's).
"""

from .deletions import (
    ModifiedData,
    apply_deletions,
    as_deletions,
    pairs_digest,
    stored_pairs,
    user_history,
)
from .model import ALS
from .options import FEEDBACKS, MODES, SOLVERS
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
