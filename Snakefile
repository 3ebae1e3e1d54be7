# bilinrec: reproduce AMHT-LRS (Paper A) and Unlearn-ALS (Paper B) end to end.
# `snakemake --cores all` runs everything; named targets: datasets, unlearn, lrs, dp,
# personalization, storage, forget, claims (see README).

from snakemake.utils import min_version, validate

from bilinrec.experiments.config_checks import check_config

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


validate(config, "workflow/schemas/config.schema.yaml")
# Section schemas are validated once more on their own so that their defaults are filled in.
for _section in ("data", "unlearn", "lrs", "dp", "personalization", "storage", "forget", "claims"):
    validate(config.setdefault(_section, {}), f"workflow/schemas/{_section}.schema.yaml")
# Then the rules that relate several keys (rank vs dim, dataset names, ...), all before any job runs.
check_config(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/unlearn.smk"
include: "workflow/rules/lrs.smk"
include: "workflow/rules/dp.smk"
include: "workflow/rules/personalization.smk"
include: "workflow/rules/storage.smk"
include: "workflow/rules/forget.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        ALL_TARGETS,
