"""Paper A on real data: personalization in the sparse-data regime, and storage scaling.

- :mod:`.protocol`: background/evaluation users and per-user train/validation/test splits;
- :mod:`.features`: item embeddings from explicit ALS on the background users;
- :mod:`.methods`: every compared method as an estimator, its grid and its per-user storage;
- :mod:`.experiment`: one run (dataset, d, seed) over all training sizes and methods;
- :mod:`.evaluation`: RMSE/MAE, activity buckets, the paired comparison;
- :mod:`.report`: tables across seeds; :mod:`.storage`: serialized storage measurements;
- :mod:`.plots`: the figures.
"""
