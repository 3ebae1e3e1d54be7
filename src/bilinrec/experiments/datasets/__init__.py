"""Workflow part 'datasets' (rules in workflow/rules/datasets.smk)."""
