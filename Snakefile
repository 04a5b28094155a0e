# kdnas under Snakemake: the same stages as dvc.yaml, calling the same CLIs in stages/.
# Run locally with `snakemake --cores 2`; any Snakemake executor (e.g. SLURM) runs the same rules.
configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/student.smk"


# Everything the pipeline reports: metrics, plots data and the report.
rule all:
    default_target: True
    input:
        rules.teacher.output.metrics,
        rules.latency_profile.output.metrics,
        rules.search.output.metrics,
        rules.latency.output.metrics,
        rules.evaluate.output.metrics,
        rules.evaluate.output.report,
