# Stage 6: distil the winner on the full training subset and export a plain HF model.
rule distill_full:
    input:
        script="stages/distill_full.py",
        code=stage_code("distill_full"),
        teacher=rules.teacher.output.model,
        transfer=rules.transfer.output.out,
        proxy=rules.proxy.output.out,
        ranking=rules.distill_topk.output.ranking,
        latency=rules.latency.output.table,
    output:
        model=directory("results/student/model"),
        summary="results/student/summary.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("distill_full"),
    log:
        f"{LOGS}/distill_full.log",
    message:
        "Distilling the chosen student on the transfer set"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher}"
        " --transfer {input.transfer} --proxy {input.proxy} --ranking {input.ranking} --latency {input.latency}"
        " --model {output.model} --summary {output.summary} --log {log}"


# The students a practitioner would pick by hand, distilled exactly as the winner is (evaluate compares them).
rule baselines:
    input:
        script="stages/baselines.py",
        code=stage_code("baselines"),
        teacher=rules.teacher.output.model,
        transfer=rules.transfer.output.out,
        proxy=rules.proxy.output.out,
    output:
        models=directory("results/baselines/models"),
        summary="results/baselines/summary.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("baselines"),
    log:
        f"{LOGS}/baselines.log",
    message:
        "Distilling the hand-crafted students"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher}"
        " --transfer {input.transfer} --proxy {input.proxy} --models {output.models} --summary {output.summary} --log {log}"


# Stage 7: GLUE metrics and speed-ups on the search task (the glue rule writes the report).
rule evaluate:
    input:
        script="stages/evaluate.py",
        code=stage_code("evaluate"),
        data=search_task_data("dev"),
        teacher=rules.teacher.output.model,
        student=rules.distill_full.output.model,
        baselines=rules.baselines.output.models,
        summary=rules.distill_full.output.summary,
        latency=rules.latency.output.table,
    output:
        metrics="metrics/evaluate.json",
        predictions="results/evaluate/predictions.csv",
        comparison="plots/comparison.csv",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("evaluate"),
    log:
        f"{LOGS}/evaluate.log",
    message:
        "Evaluating teacher and student"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher} --student {input.student}"
        " --baselines {input.baselines} --summary {input.summary} --latency {input.latency}"
        " --metrics {output.metrics} --predictions {output.predictions} --comparison {output.comparison} --log {log}"
