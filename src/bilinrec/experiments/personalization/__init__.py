"""Workflow part 'personalization' (rules in workflow/rules/personalization.smk)."""
