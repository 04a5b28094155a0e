# Time a sample of the space on this hardware and fit the latency predictor the search uses.
rule latency_profile:
    input:
        script="stages/latency_profile.py",
        code=stage_code("latency_profile"),
        teacher=rules.teacher.output.model,
    output:
        predictor="results/latency_profile/predictor.json",
        metrics="metrics/latency_profile.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("latency_profile"),
    log:
        f"{LOGS}/latency_profile.log",
    message:
        "Profiling latency of {config[latency_profile][samples]} architectures"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher}"
        " --predictor {output.predictor} --metrics {output.metrics} --log {log}"


# Stage 3: search student architectures on the proxy set; log every trial and rank them by reward.
# A checkpoint: which architectures distill_topk fans out to is known only once the search has run.
checkpoint search:
    input:
        script="stages/search.py",
        code=stage_code("search"),
        teacher=rules.teacher.output.model,
        proxies=search_task_inputs,
        predictor=rules.latency_profile.output.predictor,
    output:
        trials="results/search/trials.jsonl",
        state="results/search/trials.state.json",
        trials_csv="results/search/trials.csv",
        ranked="results/search/ranked.json",
        pareto="results/search/pareto.csv",
        hypervolume="results/search/hypervolume.csv",
        metrics="metrics/search.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("search"),
    log:
        f"{LOGS}/search.log",
    message:
        "Searching architectures with {config[search][strategy]}"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher} --proxies results/proxies"
        " --glue results/glue --latency-predictor {input.predictor} --trials {output.trials} --trials-csv {output.trials_csv} --ranked {output.ranked}"
        " --pareto {output.pareto} --hypervolume {output.hypervolume} --metrics {output.metrics} --log {log}"


# Stage 4 (distill_topk) fans out from the search checkpoint: one job per top-k candidate, then a ranking.
include: "topk.smk"


# Stage 5: careful latency of teacher, ranked candidates and hand-crafted students (a whole machine, so timings
# are not shared).
rule latency:
    input:
        script="stages/latency.py",
        code=stage_code("latency"),
        teacher=rules.teacher.output.model,
        ranking=rules.distill_topk.output.ranking,
    output:
        table="results/latency/latency.csv",
        metrics="metrics/latency.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("latency"),
    log:
        f"{LOGS}/latency.log",
    message:
        "Measuring latency"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher} --ranking {input.ranking}"
        " --table {output.table} --metrics {output.metrics} --log {log}"
