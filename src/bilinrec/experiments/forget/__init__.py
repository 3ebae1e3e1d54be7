"""Workflow part 'forget' (time to forget vs retraining from scratch; rules to come)."""
