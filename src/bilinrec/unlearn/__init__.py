"""Unlearn-ALS experiments (Paper B): data preparation, deletions, metrics, audits, runner."""
