"""Snakemake runs the same stages as DVC, with the same commands, params and outputs."""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil

import pytest
import yaml
from conftest import (
    GLUE_DIR,
    REPO,
    make_pipeline_copy,
    run,
    tiny_params,
    with_local_glue,
    write_params,
)

from kdnas.pipeline.manifest import MANIFEST, TASK_PARAMS

SHELL = re.compile(r"^Shell command: (.*?)(?: --log \S+)?$", re.M)
NODE = re.compile(r'<font point-size="18">(\w+)</font>(.*?)</table>', re.S)
FILE = re.compile(r'<font face="monospace">(.*?)</font>')

# The one documented difference between the engines. DVC cannot fan out at run time, so its distill_topk
# stage distils the top-k in a loop in one process; Snakemake's search is a checkpoint, each of the top-k
# gets a distill_candidate job, and distill_topk gathers their results. Together the two rules must do
# what the stage does: the same command (split in two), deps, params and outs, plus the per-candidate files.
FAN_OUT = {"distill_topk": "distill_candidate"}
CANDIDATE_FILE = "results/distill_topk/candidates/{arch}.json"
ARCH = "L1-H128-A4-F384"  # any architecture key: the dry run plans its candidate job


def _dvc_yaml() -> dict:
    """dvc.yaml with the search task put in for ``${task}``, as DVC does from params.yaml."""
    task = yaml.safe_load((REPO / "params.yaml").read_text())["task"]
    return yaml.safe_load((REPO / "dvc.yaml").read_text().replace("${task}", task))


def _dvc_stages():
    """dvc.yaml's stage definitions; a foreach stage's is its ``do`` block (``${key}`` = the task)."""
    return {name: stage.get("do", stage) for name, stage in _dvc_yaml()["stages"].items()}


def _dvc_commands():
    """Every command dvc.yaml runs with the repo's params.yaml, foreach stages expanded per task."""
    tasks = list(yaml.safe_load((REPO / "params.yaml").read_text())["glue"]["tasks"])
    stages = _dvc_yaml()["stages"]
    return {_normalise(stage["do"]["cmd"].replace("${key}", task)) for stage in stages.values() if "foreach" in stage
            for task in tasks} | {_normalise(stage["cmd"]) for stage in stages.values() if "foreach" not in stage}


def _normalise(cmd: str) -> str:
    return " ".join(cmd.split())


@pytest.fixture(scope="module")
def plan():
    """Every command Snakemake plans (--forceall: even where a local run has left outputs), and each rule's
    input and output files from its file graph."""
    targets = ["all", CANDIDATE_FILE.format(arch=ARCH)]
    commands = [_normalise(c) for c in SHELL.findall(run(["snakemake", "-n", "-p", "--forceall", "--cores", "1",
                                                          *targets], REPO).stdout) if c != "None"]
    graph = run(["snakemake", "--filegraph", "--forceall", "--cores", "1", *targets], REPO).stdout
    files = {}
    for rule, body in NODE.findall(graph):
        inputs, _, outputs = body.partition("output &rarr;")
        files[rule] = ({html.unescape(f) for f in FILE.findall(inputs)}, {html.unescape(f) for f in FILE.findall(outputs)})
    return commands, files


def test_dry_run_plans_the_dvc_stages_with_the_same_commands(plan):
    commands, _ = plan
    stages = _dvc_stages()
    by_stage = {}
    for cmd in commands:
        by_stage.setdefault(re.search(r"stages/(\w+)\.py", cmd).group(1), []).append(cmd)
    assert set(by_stage) == set(stages)
    tasks = list(yaml.safe_load((REPO / "params.yaml").read_text())["glue"]["tasks"])
    for name, stage in stages.items():
        dvc_cmd = _normalise(stage["cmd"])
        if "${key}" in dvc_cmd:  # a foreach stage: one job per GLUE task
            assert sorted(by_stage[name]) == sorted(dvc_cmd.replace("${key}", task) for task in tasks), name
            continue
        if name not in FAN_OUT:
            assert by_stage[name] == [dvc_cmd], name
            continue
        # the candidate job: the stage's command for one architecture, writing its own file
        candidate, gather = sorted(by_stage[name], key=lambda c: "--gather" in c)
        ranking = re.search(r"--ranking \S+", dvc_cmd).group(0)
        assert candidate == dvc_cmd.replace(ranking, f"--arch {ARCH} --candidate {CANDIDATE_FILE.format(arch=ARCH)}")
        # the gather: ranks the candidates' files into the stage's output
        assert re.fullmatch(rf"bin/kdnas-python stages/{name}\.py --params params\.yaml --gather( \S+)+ {ranking}",
                            gather), gather


GLUE_DIR_DEP = "${data.glue_dir}"
CUSTOM_DIR_DEP = "${data.custom_dir}"  # custom_tasks' files; a rule lists the task's own files instead


def _dvc_deps(stage):
    """A stage's file deps, without the kdnas modules and the data folder (checked on their own below)."""
    return {d for d in stage["deps"] if not d.startswith("kdnas/") and d not in (GLUE_DIR_DEP, CUSTOM_DIR_DEP)}


def _code_files(deps):
    """dvc.yaml's kdnas deps with folders expanded to their Python files, as the rules list them."""
    files = set()
    for dep in deps:
        if dep.startswith("kdnas/"):
            path = REPO / dep
            files |= ({str(p.relative_to(REPO)) for p in path.rglob("*.py")} if path.is_dir() else {dep})
    return files


def _dvc_outs(stage):
    return {next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}


def test_rules_read_and_write_the_dvc_files(plan):
    _, files = plan
    stages = _dvc_stages()
    glue_dir = yaml.safe_load((REPO / "params.yaml").read_text())["data"]["glue_dir"]
    assert set(files) == set(stages) | set(FAN_OUT.values()) | {"all"}
    for name, stage in stages.items():
        inputs, outputs = files[name]
        if "${key}" in stage["cmd"]:  # a foreach stage: one file-graph node with a {task} wildcard
            stage = yaml.safe_load(yaml.safe_dump(stage).replace("${key}", "{task}"))
            inputs, outputs = ({re.sub(r"\{(\w+),[^}]*\}", r"{\1}", f) for f in fs} for fs in (inputs, outputs))
        if name in FAN_OUT:
            cand_inputs, cand_outputs = files[FAN_OUT[name]]
            assert {re.sub(r",[^}]*}", "}", f) for f in cand_outputs} == {CANDIDATE_FILE}
            assert "<input function>" in inputs  # the candidates' files, known once the search has run
            inputs = (inputs - {"<input function>"}) | cand_inputs
        deps = _dvc_deps(stage)
        # the code each stage runs is an input under both engines (a library edit reruns the same jobs)
        assert {f for f in inputs if f.startswith("kdnas/")} == _code_files(stage["deps"]), name
        inputs = {f for f in inputs if not f.startswith("kdnas/")}
        # the data: DVC tracks the GLUE folder, a rule the task's files in it (or an input function naming them)
        data = {f for f in inputs if f.startswith(glue_dir + "/")}
        # a stage that reads a task's data depends on both data folders: the task may be GLUE's or yours
        assert (GLUE_DIR_DEP in stage["deps"]) == (CUSTOM_DIR_DEP in stage["deps"]), name
        if GLUE_DIR_DEP in stage["deps"]:
            assert data or "<input function>" in inputs, name
            inputs -= data | ({"<input function>"} if not data else set())
        else:
            assert not data, name
        # a folder dvc.yaml depends on as a whole (e.g. metrics/glue) stands for the per-task files a rule lists
        inputs = {next((d for d in deps if f.startswith(d.rstrip("/") + "/")), f) for f in inputs}
        if name in ("search", "distill_topk"):
            # search_task_inputs (an input function) lists every search task's proxy folder, which DVC's
            # results/proxies stands for, and the fan-out teachers the multi-task search loads: the one
            # documented difference, as a DVC dep list cannot follow glue.tasks; each proxy folder records its
            # teacher's fingerprint instead, and the search refuses a teacher that does not match it
            assert "<input function>" in inputs, name
            inputs = (inputs - {"<input function>"}) | {"results/proxies"}
        assert inputs == deps, name
        assert outputs == _dvc_outs(stage), name


def _tracked():
    """Each rule's tracked params: the manifest's when the rule names its own stage (``stage_params``), else the
    keys its ``block`` call lists (the fan-out pair, which splits distill_topk's block)."""
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    rules = re.findall(r"^(?:rule|checkpoint) (\w+):.*?tracked=(block|stage_params)\(([^)]*)\)", text, re.M | re.S)
    tracked = {}
    for name, helper, keys in rules:
        if helper == "stage_params":
            assert keys == f'"{name}"', f"rule {name} tracks the params of stage {keys}"
            tracked[name] = set(MANIFEST[name].params)
            continue
        tracked[name] = {k.strip().strip('"') for k in keys.replace("\n", " ").split(",") if k.strip()}
    return tracked


def _dvc_params(stage) -> list[str]:
    """A dvc.yaml stage's params keys, from params.yaml or (a per-task stage) from its task's resolved params
    file; which file a per-task stage's keys come from is held to the manifest in tests/pipeline/test_manifest.py."""
    return [key for entry in stage["params"] for key in (next(iter(entry.values())) if isinstance(entry, dict)
                                                          else [entry])]


def test_rules_track_the_same_params_as_dvc():
    rules, stages = _tracked(), _dvc_stages()
    assert set(rules) == set(stages) | set(FAN_OUT.values())
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in stages.items():
        tracked = rules[name]
        if name in FAN_OUT:
            candidate = rules[FAN_OUT[name]]
            assert f"{name}.k" not in candidate, "changing k must not rerun the candidates already distilled"
            # DVC tracks the whole block; the two rules split it between them, key by key
            union, block_keys = tracked | candidate, {f"{name}.{key}" for key in defaults[name]}
            assert block_keys <= union, f"{name}: keys no rule tracks: {block_keys - union}"
            tracked = (union - block_keys) | {name}
        assert sorted(tracked) == sorted(_dvc_params(stage)), name
        # a per-task rule (stage_params) values its keys in the task's resolved params, glue_params' in
        # params.yaml: dvc.yaml reads them from the same place
        resolved = MANIFEST[name].per_task and not MANIFEST[name].resolves_task_params
        from_file = [next(iter(entry)) for entry in stage["params"] if isinstance(entry, dict)]
        assert from_file == ([TASK_PARAMS] if resolved else []), name



def test_rule_outputs_match_dvc_outs():
    stages = _dvc_stages()
    task = yaml.safe_load((REPO / "params.yaml").read_text())["task"]
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    text = text.replace("{config['task']}", task)  # the search task's proxy folder, an f-string in the rule
    for name, stage in stages.items():
        block = re.search(rf"^(?:rule|checkpoint) {name}:(.*?)^\s+params:", text, re.M | re.S).group(1)
        outputs = block.split("output:")[1]
        declared = set(re.findall(r'"([^"]+)"', outputs))
        dvc_outs = {(next(iter(o)) if isinstance(o, dict) else o).replace("${key}", "{task}")
                    for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}
        assert declared == dvc_outs, name


def _artifacts(root):
    """Pipeline outputs under root, without each engine's bookkeeping (DVC's .gitignore files,
    Snakemake's markers in directory outputs) and without Snakemake's per-candidate fan-out files."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
            and p.parts[len(root.parts)] in ("results", "metrics", "plots", "report", "export")
            and p.name not in (".gitignore", ".snakemake_timestamp") and "candidates" not in p.parts}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plan(root, *args) -> tuple[dict[str, int], str]:
    """Jobs a dry run plans, per rule (from Snakemake's job stats table), and its output."""
    out = run(["snakemake", "-n", *args], root).stdout
    if "Nothing to be done" in out:
        return {}, out
    table = out.split("Job stats:")[1].split("total")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}, out


def _planned(root, *args) -> dict[str, int]:
    return _plan(root, *args)[0]


LOCAL = ("--workflow-profile", "workflow/profiles/local")


@pytest.mark.slow
def test_snakemake_run_produces_the_files_dvc_produces(dvc_run, tmp_path):
    params = tiny_params()
    root = make_pipeline_copy(tmp_path / "project", params)
    params = with_local_glue(root, params)
    result = run(["snakemake", *LOCAL], root, timeout=1800)
    k, tasks = params["distill_topk"]["k"], len(params["glue"]["tasks"])
    # 9 stages, the search checkpoint's k candidate jobs and their gather, 7 jobs per GLUE task (glue_params and
    # six), glue, export, all
    jobs = 9 + k + 1 + 7 * tasks + 3
    assert f"{jobs} of {jobs} steps (100%) done" in result.stdout + result.stderr
    produced, expected = _artifacts(root), _artifacts(dvc_run)
    assert produced == expected
    # deterministic stages give byte-identical artifacts under both engines
    for path in ("results/teacher/model/model.safetensors", "results/transfer/logits.parquet",
                 "results/proxies/sst2/train.parquet", "results/proxies/sst2/dev.parquet", "metrics/teacher.json"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    # the fan-out (a job per candidate, then a gather) distils what DVC's one-process loop does, to the same
    # scores
    fanned = json.loads((root / "results/distill_topk/ranking.json").read_text())
    looped = json.loads((dvc_run / "results/distill_topk/ranking.json").read_text())
    fanned, looped = (sorted(ranking, key=lambda r: r["arch"]) for ranking in (fanned, looped))
    assert [r["arch"] for r in fanned] == [r["arch"] for r in looped]
    assert [r["score_sst2"] for r in fanned] == [r["score_sst2"] for r in looped]  # accuracy: exactly
    # float sums in another process order: equal to about 1e-6 relative (the multi-task score includes the
    # STS-B student's Pearson, computed from its float outputs)
    assert [r["score"] for r in fanned] == pytest.approx([r["score"] for r in looped], rel=1e-5)
    assert [r["kd_loss"] for r in fanned] == pytest.approx([r["kd_loss"] for r in looped], rel=1e-4)
    assert len(list((root / "results/distill_topk/candidates").glob("*.json"))) == k
    assert json.loads((root / "metrics/evaluate.json").read_text())["teacher"] == \
        json.loads((dvc_run / "metrics/evaluate.json").read_text())["teacher"]

    # two runs from scratch: with the analytic latency (tests/params.tiny.yaml) the search, the ranking and
    # the winner depend on nothing measured, so everything but wall-clock fields and timings repeats
    assert _without_clock(_jsonl(root / "results/search/trials.jsonl")) == \
        _without_clock(_jsonl(dvc_run / "results/search/trials.jsonl"))
    assert _without_clock(_json(root / "results/search/ranked.json")) == \
        _without_clock(_json(dvc_run / "results/search/ranked.json"))
    assert _json(root / "results/student/summary.json")["arch"] == _json(dvc_run / "results/student/summary.json")["arch"]
    assert _sha(root / "results/student/model/model.safetensors") == \
        _sha(dvc_run / "results/student/model/model.safetensors")
    ours, theirs = _json(root / "metrics/evaluate.json"), _json(dvc_run / "metrics/evaluate.json")
    for key in ("arch", "teacher", "student", "percent_of_teacher", "param_ratio"):
        assert ours[key] == theirs[key], key
    assert (root / "results/evaluate/predictions.csv").read_text() == \
        (dvc_run / "results/evaluate/predictions.csv").read_text()

    for path in ("results/glue/stsb/teacher/model/model.safetensors", "results/glue/stsb/transfer/logits.parquet",
                 "results/proxies/stsb/train.parquet", "results/glue/stsb/student/model/model.safetensors"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    _adding_a_task_plans_its_jobs_and_the_search(root, params)
    write_params(root / "params.yaml", params)
    _edited_code_and_data_rerun_what_reads_them(root)

    # one more candidate: one more candidate job and the gather (and what reads the ranking); nothing else
    write_params(root / "params.yaml", {**params, "distill_topk": {**params["distill_topk"], "k": k + 1}})
    assert _planned(root, *LOCAL) == {"distill_candidate": 1, "distill_topk": 1, "latency": 1, "distill_full": 1,
                                      "evaluate": 1, "glue_distill": tasks, "glue_evaluate": tasks, "glue": 1,
                                      "export": 1, "all": 1}
    write_params(root / "params.yaml", params)
    # `dvc checkout`/`dvc pull` rewrite mtimes, and Snakemake 9 reruns whatever is older than a touched
    # input (a directory or a file too big to checksum) whatever the rerun triggers; `snakemake --touch`
    # after a DVC checkout marks the restored outputs up to date, rerunning nothing
    teacher = root / "results/teacher/model"
    for path in (teacher, *teacher.rglob("*"), root / "metrics/teacher.json"):
        os.utime(path)
    assert _planned(root, *LOCAL).get("proxy") == 1
    run(["snakemake", "--touch", *LOCAL], root)
    assert _planned(root, *LOCAL) == {}


CLOCK = ("seconds", "train_seconds")  # wall-clock fields


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _json(path):
    return json.loads(path.read_text())


def _without_clock(rows):
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in rows]


def _adding_a_task_plans_its_jobs_and_the_search(root, run_params):
    """A task added to glue.tasks plans its seven jobs, and the multi-task search (search.tasks: all) with what
    follows it, but no other task's teacher, transfer or proxy job; a change to one task's teacher replans
    that task's jobs (tracked params are per wildcard) and the search that scores it."""
    params = json.loads(json.dumps(run_params))  # the params the run was made with
    shutil.copytree(GLUE_DIR / "RTE", root / "data/glue/RTE")
    params["glue"]["tasks"]["rte"] = {"data": {"train_size": 100}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    jobs, out = _plan(root, "--cores", "1")  # no profile: its printed commands name every task
    assert {rule: jobs.get(rule) for rule in ("glue_teacher", "glue_transfer", "glue_proxy", "search")} == \
        {"glue_teacher": 1, "glue_transfer": 1, "glue_proxy": 1, "search": 1}
    assert "teacher" not in jobs and "proxy" not in jobs and "latency_profile" not in jobs
    assert "Fine-tuning the rte teacher" in out and "Fine-tuning the stsb teacher" not in out
    params["glue"]["tasks"].pop("rte")
    params["glue"]["tasks"]["stsb"]["teacher"] = {"epochs": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    jobs, out = _plan(root, "--cores", "1")  # no profile: its printed commands name every task
    assert {rule: jobs.get(rule) for rule in ("glue_teacher", "glue_proxy", "search")} == \
        {"glue_teacher": 1, "glue_proxy": 1, "search": 1}
    assert "Fine-tuning the stsb teacher" in out


def _edited_code_and_data_rerun_what_reads_them(root):
    """A library module and a data file are rule inputs: editing one replans exactly the jobs that read it.
    (Snakemake compares a small input's checksum, so the edit changes content; a touched mtime alone would not
    count for it.)"""
    gathering = {"glue": 1, "export": 1, "all": 1}
    assert _planned(root, *LOCAL) == {}
    edits = {"kdnas/evaluation/scoring.py": ({"evaluate": 1, "glue_evaluate": 1, **gathering}, b"# edited\n"),
             # the fan-out task's training file: its teacher and everything after it, which under the
             # multi-task search includes the search and every stage after it
             "data/glue/STS-B/train.tsv": ({"glue_teacher": 1, "glue_transfer": 1, "glue_proxy": 1, "search": 1,
                                            "distill_topk": 1, "latency": 1, "distill_full": 1, "evaluate": 1,
                                            "glue_distill": 1, "glue_baselines": 1, "glue_evaluate": 1,
                                            **gathering}, None)}
    for name, (expected, extra) in edits.items():
        path = root / name
        original = path.read_bytes()
        path.write_bytes(original + (extra or original.splitlines(keepends=True)[1]))
        assert _planned(root, *LOCAL) == expected, name
        path.write_bytes(original)
        run(["snakemake", "--touch", *LOCAL], root)
        assert _planned(root, *LOCAL) == {}, name
