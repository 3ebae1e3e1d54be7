"""The reusable models: import these to train, forget and personalize. No config, no paths.

- :mod:`bilinrec.models.als`: ALS for bi-linear recommenders with exact unlearning (Unlearn-ALS);
- :mod:`bilinrec.models.lrs`: AMHT-LRS (low-rank + sparse users), its baselines and its
  differentially private variant.
"""
