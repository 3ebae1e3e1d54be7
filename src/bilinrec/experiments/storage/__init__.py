"""Workflow part 'storage' (rules in workflow/rules/storage.smk)."""
