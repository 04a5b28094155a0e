"""The slurm profile, as written, on a real one-node SLURM cluster (workflow/cluster/slurm-one-node.sh): the
search task's rules from proxy to the top-k fan-out and its gather run as SLURM jobs with the profile's CPUs,
and give the local DVC run's files."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest
import yaml
from conftest import REPO, make_pipeline_copy, run, tiny_params

SCRIPT = REPO / "workflow" / "cluster" / "slurm-one-node.sh"
PROFILE = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
NODE_CPUS = max(PROFILE["set-threads"].values())


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running one-node cluster; SLURM_CONF points the SLURM commands (and Snakemake's sbatch) at it."""
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster needs root (it installs packages and runs slurmd); CI runs as root")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="the test extra installs the SLURM executor plugin")
    folder = tmp_path_factory.mktemp("slurm")
    # the node declares NODE_CPUS CPUs (oversubscribed), so jobs sized by the profile for real nodes are accepted
    started = subprocess.run(["bash", str(SCRIPT), "start", str(folder), str(NODE_CPUS)], capture_output=True,
                             text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "slurm.conf")
    try:
        yield folder
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], timeout=60)
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before


def _completed_jobs(jobcomp) -> list[dict]:
    """Finished jobs from the cluster's job-completion file (one `key=value ...` line per job)."""
    jobs = []
    for line in jobcomp.read_text().splitlines() if jobcomp.exists() else []:
        jobs.append(dict(field.split("=", 1) for field in line.split() if "=" in field))
    return jobs


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_search_and_topk_fan_out_run_as_slurm_jobs_through_the_profile_as_written(slurm_cluster, dvc_run, tmp_path):
    params = tiny_params()
    root = make_pipeline_copy(tmp_path / "project", params)
    # The teacher comes from the local DVC run, as a colleague's `dvc pull` would bring it (fresh mtimes):
    # fine-tuning it again would only repeat what tests/distillation/test_checkpoint.py checks (same bytes on a rerun).
    # The multi-task search (search.tasks: all) reads the fanned-out task's teacher too: pulled the same way.
    for model, metrics in (("results/teacher/model", "metrics/teacher.json"),
                           ("results/glue/stsb/teacher/model", "metrics/glue/stsb/teacher.json")):
        shutil.copytree(dvc_run / model, root / model, copy_function=shutil.copy)
        (root / metrics).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(dvc_run / metrics, root / metrics)
    # The workflow profile exactly as a user would run it, plus the two flags its comments prescribe for a
    # cluster without an accounting database or accounts, and no retries (a failure must show).
    cmd = ["timeout", "-s", "KILL", "900", "snakemake", "--workflow-profile", "workflow/profiles/slurm",
           "--slurm-no-account", "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
           "--latency-wait", "5", "--retries", "0", "results/distill_topk/ranking.json"]
    start = time.perf_counter()
    result = run(cmd, root, timeout=960)
    log = result.stdout + result.stderr
    assert "Using workflow specific profile workflow/profiles/slurm" in log
    k = params["distill_topk"]["k"]
    rules = ["proxy", "glue_proxy", "latency_profile", "search", *["distill_candidate"] * k, "distill_topk"]
    assert f"{len(rules)} of {len(rules)} steps (100%) done" in log, log[-3000:]  # the teachers are up to date
    jobs = _completed_jobs(slurm_cluster / "jobcomp.txt")
    assert [job["JobState"] for job in jobs] == ["COMPLETED"] * len(rules), jobs
    # every job was submitted with its rule's CPUs from the profile (set-threads -> --cpus-per-task); a rule the
    # profile submits with --exclusive (the timing ones) holds the whole node
    exclusive = {rule for rule, res in PROFILE["set-resources"].items() if "--exclusive" in res.get("slurm_extra", "")}
    expected = [NODE_CPUS if rule in exclusive else PROFILE["set-threads"][rule] for rule in rules]
    assert sorted(int(job["ProcCnt"]) for job in jobs) == sorted(expected)
    # sacct reads the same records through SLURM's own tool
    sacct = run(["sacct", "-c", "-n", "-P", "-o", "jobid,state"], root).stdout.split()
    assert len(sacct) == len(rules) and all(line.endswith("|COMPLETED") for line in sacct)
    # the same files as the local run: proxy byte for byte; the fan-out's ranking, the same candidates and scores
    for path in ("results/proxies/sst2/train.parquet", "results/proxies/sst2/dev.parquet",
                 "results/proxies/stsb/train.parquet"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    ranked = [json.loads((r / "results/distill_topk/ranking.json").read_text()) for r in (root, dvc_run)]
    assert sorted((c["arch"], c["score"]) for c in ranked[0]) == sorted((c["arch"], c["score"]) for c in ranked[1])
    assert len(list((root / "results/distill_topk/candidates").glob("*.json"))) == k
    print(f"proxy to the top-k gather through SLURM: {time.perf_counter() - start:.1f} s")
