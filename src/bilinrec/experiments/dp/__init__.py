"""Workflow part 'dp' (rules in workflow/rules/dp.smk)."""
