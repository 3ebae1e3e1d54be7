"""Workflow part 'personalization' (rules in workflow/rules/personalization.smk).

The names the Snakefile needs are defined here, without imports, so that parsing the workflow
stays light (every cluster job parses it again).
"""

#: The dataset of the positive control (see :mod:`bilinrec.experiments.personalization.control`).
CONTROL_DATASET = "synthetic-ml-sparse"
