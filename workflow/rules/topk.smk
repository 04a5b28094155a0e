# Stage 4, distill_topk, fanned out: the search checkpoint ranks its trials; its best distill_topk.k
# architectures each get a job (parallel, e.g. one SLURM job each), and one job ranks their results.
# DVC cannot fan out at run time, so dvc.yaml runs the same per-candidate code in a loop in one stage
# (tests/pipeline/test_pipeline_snakemake.py allows this one, documented difference and checks the rest).
# The input function topk_candidates (reading the checkpoint) is in common.smk.


# One top-k candidate distilled longer on the proxy set.
rule distill_candidate:
    input:
        script="stages/distill_topk.py",
        code=stage_code("distill_topk"),
        teacher=rules.teacher.output.model,
        proxies=search_task_inputs,
        ranked=rules.search.output.ranked,
    output:
        candidate="results/distill_topk/candidates/{arch}.json",
    wildcard_constraints:
        arch=r"L\d+-H\d+-A\d+-F\d+",
    params:
        params_file=PARAMS_FILE,
        # the training keys only, not distill_topk.k: changing k adds or drops candidate jobs, reruns none
        tracked=block("seed", "compute", "task", "custom_tasks", "data.max_length", "space.init", "space.importance", "search.tasks", "distill_topk.epochs", "distill_topk.lr",
                      "distill_topk.batch_size", "distill_topk.losses", "distill_topk.temperature", "glue.tasks"),
    log:
        f"{LOGS}/distill_topk/{{arch}}.log",
    message:
        "Distilling candidate {wildcards.arch} on the proxy set"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --teacher {input.teacher} --proxies results/proxies"
        " --glue results/glue --ranked {input.ranked} --arch {wildcards.arch} --candidate {output.candidate} --log {log}"


# The gather: rank the k candidates by reward (what dvc.yaml's distill_topk writes).
rule distill_topk:
    input:
        script="stages/distill_topk.py",
        code=stage_code("distill_topk"),
        candidates=topk_candidates,
    output:
        ranking="results/distill_topk/ranking.json",
    params:
        params_file=PARAMS_FILE,
        tracked=block("search.reward", "distill_topk.k"),
    log:
        f"{LOGS}/distill_topk.log",
    message:
        "Ranking the top-{config[distill_topk][k]} candidates"
    shell:
        "bin/kdnas-python {input.script} --params {params.params_file} --gather {input.candidates}"
        " --ranking {output.ranking} --log {log}"
