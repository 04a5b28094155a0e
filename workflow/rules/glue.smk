# GLUE fan-out: every task of glue.tasks (wildcard {task}) gets its own teacher, cached logits and the
# searched student; `glue` gathers them with the search task into the GLUE table and the report, and
# `export` writes every student as a shippable folder. Each job tracks its own keys of its task's resolved
# params (stage_params), so a change to one task's entry reruns only the jobs it concerns; glue_params writes
# those resolved params to the file dvc.yaml's per-task stages track (no rule needs it: the jobs resolve them).
GLUE_TASKS = list(config["glue"]["tasks"] or {})


wildcard_constraints:
    task="|".join(GLUE_TASKS) or "no-glue-task",


localrules: glue_params  # a second's YAML: on a cluster, not worth an sbatch job


rule glue_params:
    input:
        script="stages/glue_params.py",
        code=stage_code("glue_params"),
    output:
        out="results/glue_params/{task}.yaml",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_params"),
    log:
        f"{LOGS}/glue_params/{{task}}.log",
    message:
        "Resolving the {wildcards.task} params"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task}"
        " --out {output.out} --log {log}"


rule glue_teacher:
    input:
        script="stages/glue_teacher.py",
        code=stage_code("glue_teacher"),
        data=fanout_task_data,
    output:
        model=directory("results/glue/{task}/teacher/model"),
        metrics="metrics/glue/{task}/teacher.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_teacher"),
    log:
        f"{LOGS}/glue_teacher/{{task}}.log",
    message:
        "Fine-tuning the {wildcards.task} teacher"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task}"
        " --model {output.model} --metrics {output.metrics} --log {log}"


rule glue_transfer:
    input:
        script="stages/glue_transfer.py",
        code=stage_code("glue_transfer"),
        data=fanout_task_data,
        teacher=rules.glue_teacher.output.model,
    output:
        out="results/glue/{task}/transfer/logits.parquet",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_transfer"),
    log:
        f"{LOGS}/glue_transfer/{{task}}.log",
    message:
        "Caching the {wildcards.task} teacher's logits"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task}"
        " --teacher {input.teacher} --out {output.out} --log {log}"


# The task's proxy sets, for the multi-task search (search.tasks: all).
rule glue_proxy:
    input:
        script="stages/glue_proxy.py",
        code=stage_code("glue_proxy"),
        data=fanout_task_data,
        teacher=rules.glue_teacher.output.model,
    output:
        out=directory("results/proxies/{task}"),
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_proxy"),
    log:
        f"{LOGS}/glue_proxy/{{task}}.log",
    message:
        "Building the {wildcards.task} proxy sets"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task}"
        " --teacher {input.teacher} --out {output.out} --log {log}"


rule glue_distill:
    input:
        script="stages/glue_distill.py",
        code=stage_code("glue_distill"),
        teacher=rules.glue_teacher.output.model,
        transfer=rules.glue_transfer.output.out,
        ranking=rules.distill_topk.output.ranking,
        latency=rules.latency.output.table,
        searched=rules.distill_full.output.summary,
    output:
        model=directory("results/glue/{task}/student/model"),
        summary="results/glue/{task}/student/summary.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_distill"),
    log:
        f"{LOGS}/glue_distill/{{task}}.log",
    message:
        "Distilling the searched student from the {wildcards.task} teacher"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task} --teacher {input.teacher}"
        " --transfer {input.transfer} --ranking {input.ranking} --latency {input.latency}"
        " --searched {input.searched} --model {output.model} --summary {output.summary} --log {log}"


rule glue_baselines:
    input:
        script="stages/glue_baselines.py",
        code=stage_code("glue_baselines"),
        teacher=rules.glue_teacher.output.model,
        transfer=rules.glue_transfer.output.out,
    output:
        models=directory("results/glue/{task}/baselines/models"),
        summary="results/glue/{task}/baselines/summary.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_baselines"),
    log:
        f"{LOGS}/glue_baselines/{{task}}.log",
    message:
        "Distilling the {wildcards.task} hand-crafted students"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task} --teacher {input.teacher}"
        " --transfer {input.transfer} --models {output.models} --summary {output.summary} --log {log}"


rule glue_evaluate:
    input:
        script="stages/glue_evaluate.py",
        code=stage_code("glue_evaluate"),
        data=fanout_task_data,
        teacher=rules.glue_teacher.output.model,
        student=rules.glue_distill.output.model,
        baselines=rules.glue_baselines.output.models,
        summary=rules.glue_distill.output.summary,
        latency=rules.latency.output.table,
    output:
        predictions="results/glue/{task}/predictions.csv",
        metrics="metrics/glue/{task}/evaluate.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue_evaluate"),
    log:
        f"{LOGS}/glue_evaluate/{{task}}.log",
    message:
        "Scoring the {wildcards.task} teacher and student"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --task {wildcards.task} --teacher {input.teacher}"
        " --student {input.student} --baselines {input.baselines} --summary {input.summary} --latency {input.latency}"
        " --metrics {output.metrics} --predictions {output.predictions} --log {log}"


# Every task's student as a shippable folder: HF files, model card, ONNX checked against PyTorch, int8 scored.
rule export:
    input:
        script="stages/export.py",
        code=stage_code("export"),
        data=all_tasks_dev_data,
        student=rules.distill_full.output.model,
        summary=rules.distill_full.output.summary,
        search=rules.evaluate.output.metrics,
        teacher=rules.teacher.output.metrics,
        students=expand("results/glue/{task}/student/model", task=GLUE_TASKS),
        tasks=expand("metrics/glue/{task}/evaluate.json", task=GLUE_TASKS),
        latency=rules.latency.output.table,
    output:
        out=directory("export"),
        metrics="metrics/export.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("export"),
    log:
        f"{LOGS}/export.log",
    message:
        "Exporting every task's student (HF, model card, ONNX)"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --student {input.student} --summary {input.summary}"
        " --search-metrics {input.search} --teacher-metrics {input.teacher} --glue-results results/glue"
        " --glue-metrics metrics/glue --latency {input.latency} --out {output.out} --metrics {output.metrics} --log {log}"


# The GLUE table of the search task and every glue task, the student in each form it ships as (export's ONNX
# scores), and the report.
rule glue:
    input:
        script="stages/glue.py",
        code=stage_code("glue"),
        search=rules.evaluate.output.metrics,
        tasks=expand("metrics/glue/{task}/evaluate.json", task=GLUE_TASKS),
        summary=rules.distill_full.output.summary,
        latency=rules.latency.output.table,
        trials=rules.search.output.trials_csv,
        export=rules.export.output.metrics,
    output:
        report=directory("report"),
        metrics="metrics/glue.json",
        plot="plots/glue.csv",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("glue"),
    log:
        f"{LOGS}/glue.log",
    message:
        "Writing the GLUE table and the report"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --search-metrics {input.search}"
        " --glue-metrics metrics/glue --summary {input.summary} --latency {input.latency} --trials {input.trials}"
        " --export-metrics {input.export} --metrics {output.metrics} --plot {output.plot} --report {output.report}"
        " --log {log}"
