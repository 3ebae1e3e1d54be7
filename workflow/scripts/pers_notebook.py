"""Snakemake: execute notebooks/lrs_movielens.ipynb, which draws the personalization and storage figures."""

import logging

from bilinrec.experiments.personalization.steps import notebook_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
logging.captureWarnings(True)

notebook_step(
    snakemake.input.notebook,
    {"ipynb": snakemake.output.ipynb, "html": snakemake.output.html},
    {
        "summary_csv": snakemake.input.summary,
        "storage_csv": snakemake.input.storage,
        "rmse_vs_m_stem": snakemake.params.stems["rmse_vs_m"],
        "storage_scaling_stem": snakemake.params.stems["storage_scaling"],
        "storage_vs_rmse_stem": snakemake.params.stems["storage_vs_rmse"],
        "train_sizes": snakemake.params.train_sizes,
        "storage_vs_rmse_m": snakemake.params.storage_vs_rmse_m,
    },
)
