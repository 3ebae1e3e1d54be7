"""Workflow part 'unlearn' (rules in workflow/rules/unlearn.smk)."""
