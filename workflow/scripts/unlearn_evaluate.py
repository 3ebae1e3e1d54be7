"""Rule unlearn_evaluate: metrics, exactness checks, membership inference and plot samples of one run."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import evaluate_step

with job(snakemake):
    wc = snakemake.wildcards
    evaluate_step(
        split_path=snakemake.input.split,
        deletions_path=snakemake.input.deletions,
        original_path=snakemake.input.original,
        retrain_paths=list(snakemake.input.retrained),
        unlearned_path=snakemake.input.unlearned,
        cfg=snakemake.params.cfg,
        run={"dataset": wc.dataset, "strategy": wc.strategy, "fraction": float(wc.fraction), "seed": int(wc.seed)},
        out_json=snakemake.output.metrics,
        out_scores=snakemake.output.scores,
        out_history=snakemake.output.history,
    )
