"""Every *_notebook rule: execute the part's thin notebook with the rule's ``params.parameters``.

Named so that it cannot shadow the ``notebook`` package that nbconvert tries to import.
"""

import os

from bilinrec.experiments.jobs import job
from bilinrec.notebooks import execute_notebook

with job(snakemake):
    execute_notebook(snakemake.input.notebook, snakemake.output.ipynb, snakemake.output.html,
                     parameters=dict(snakemake.params.parameters), cwd=os.getcwd())
