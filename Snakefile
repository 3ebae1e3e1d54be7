# bilinrec: reproduce AMHT-LRS (Paper A) and Unlearn-ALS (Paper B) end to end.
# `snakemake --cores all` runs everything; named targets: one per part (datasets, unlearn, lrs, dp,
# personalization, storage, forget) and claims (see README).
#
# A part is a rule file workflow/rules/<part>.smk with its schema workflow/schemas/<part>.schema.yaml
# (docs/development.md, "Adding a part"): both are found here, nothing lists the parts by hand.

from pathlib import Path

from snakemake.utils import min_version, validate

from bilinrec.experiments.config_checks import check_config, check_sections

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# The sections of the config: one schema file each (data, claims, and one per part).
SECTIONS = sorted(p.name.removesuffix(".schema.yaml") for p in Path("workflow/schemas").glob("*.schema.yaml"))
SECTIONS.remove("config")
check_sections(config, SECTIONS)
validate(config, "workflow/schemas/config.schema.yaml")
# Each section is validated against its own schema, which fills in its defaults.
for _section in SECTIONS:
    validate(config.setdefault(_section, {}), f"workflow/schemas/{_section}.schema.yaml")
# Then the rules that relate several keys (rank vs dim, dataset names, ...), all before any job runs.
check_config(config)


include: "workflow/rules/common.smk"


# The parts, in name order (a part reads another's outputs only through paths in common.smk).
PARTS = sorted(p.stem for p in Path("workflow/rules").glob("*.smk") if p.stem not in ("common", "report"))
for _part in PARTS:

    include: f"workflow/rules/{_part}.smk"


include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        ALL_TARGETS,
