# kdnas under Snakemake: the same stages as dvc.yaml, calling the same CLIs in stages/.
# Run with a profile: `snakemake --workflow-profile workflow/profiles/local` (or slurm, slurm-gpu); threads and
# resources per rule live in the profiles, not here.
include: "workflow/rules/common.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/student.smk"
include: "workflow/rules/glue.smk"


# Everything the pipeline reports: metrics, plots data, the report and the exported students; and each GLUE
# task's resolved params, the file dvc.yaml's per-task stages track (here nothing reads it: the jobs resolve them).
rule all:
    default_target: True
    input:
        rules.teacher.output.metrics,
        rules.latency_profile.output.metrics,
        rules.search.output.metrics,
        rules.latency.output.metrics,
        rules.evaluate.output.metrics,
        rules.glue.output.report,
        rules.export.output.out,
        expand(rules.glue_params.output.out, task=GLUE_TASKS),
