"""Workflow part 'lrs' (rules in workflow/rules/lrs.smk)."""
