"""Rule unlearn_evaluate: metrics, exactness checks, membership inference and plot samples of one run."""

import logging

from threadpoolctl import threadpool_limits

from bilinrec.experiments.unlearn.steps import evaluate_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
wc = snakemake.wildcards
with threadpool_limits(limits=snakemake.threads):
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
