"""Rule unlearn_race: the fair race of unlearning against three retraining peers for one (dataset, seed)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import race_step

with job(snakemake):
    race_step(
        split_path=snakemake.input.split,
        original_path=snakemake.input.original,
        dataset=snakemake.wildcards.dataset,
        cfg=snakemake.params.cfg,
        root_seed=snakemake.params.root_seed,
        seed=int(snakemake.wildcards.seed),
        out=snakemake.output[0],
        threads=snakemake.threads,
        size=snakemake.wildcards.size,
        stratum=snakemake.wildcards.stratum,
    )
