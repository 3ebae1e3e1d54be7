"""The paper replication: one package per workflow part; each reads config and calls bilinrec.models.

Every part has ``steps.py`` (the functions the workflow scripts call, one per rule) and, where
it draws figures, ``plots.py``. ``claims.py`` turns the parts' tables into the claims verdict.
"""
