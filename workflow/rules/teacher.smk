# Stage 1: fine-tune the teacher; save it, its dev metrics and its logits on the training subset.
rule teacher:
    input:
        script="stages/teacher.py",
        code=stage_code("teacher"),
        data=search_task_data("train", "dev"),
    output:
        model=directory("results/teacher/model"),
        metrics="metrics/teacher.json",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("teacher"),
    log:
        f"{LOGS}/teacher.log",
    message:
        "Fine-tuning the teacher on {config[task]}"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --model {output.model}"
        " --metrics {output.metrics} --log {log}"


# Stage 2: proxy-train and proxy-dev sets with cached teacher logits.
rule proxy:
    input:
        script="stages/proxy.py",
        code=stage_code("proxy"),
        data=search_task_data("train"),
        teacher=rules.teacher.output.model,
    output:
        out=directory(f"results/proxies/{config['task']}"),
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("proxy"),
    log:
        f"{LOGS}/proxy.log",
    message:
        "Building the proxy sets"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher} --out {output.out} --log {log}"


# The transfer set for full distillation (the teacher's rows and more) with cached teacher logits.
rule transfer:
    input:
        script="stages/transfer.py",
        code=stage_code("transfer"),
        data=search_task_data("train"),
        teacher=rules.teacher.output.model,
    output:
        out="results/transfer/logits.parquet",
    params:
        params_file=PARAMS_FILE,
        tracked=stage_params("transfer"),
    log:
        f"{LOGS}/transfer.log",
    message:
        "Caching teacher logits on {config[transfer][size]} transfer rows"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher} --out {output.out} --log {log}"
