"""The slurm profile on a real one-node SLURM cluster (workflow/cluster/slurm-one-node.sh): the proxy rule
runs as a SLURM job and gives the same bytes as the local DVC run."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

import pytest

from conftest import REPO, make_pipeline_copy, run, tiny_params

SCRIPT = REPO / "workflow" / "cluster" / "slurm-one-node.sh"


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running one-node cluster; SLURM_CONF points the SLURM commands (and Snakemake's sbatch) at it."""
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster needs root (it installs packages and runs slurmd); CI runs as root")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="the test extra installs the SLURM executor plugin")
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=300)
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
def test_proxy_runs_as_a_slurm_job_and_matches_the_local_run(slurm_cluster, dvc_run, tmp_path):
    root = make_pipeline_copy(tmp_path / "project", tiny_params())
    # The teacher comes from the local DVC run, as a colleague's `dvc pull` would bring it (fresh mtimes):
    # fine-tuning it again would only repeat what tests/test_checkpoint.py checks (same bytes on a rerun).
    shutil.copytree(dvc_run / "results/teacher/model", root / "results/teacher/model", copy_function=shutil.copy)
    (root / "metrics").mkdir(exist_ok=True)
    shutil.copy(dvc_run / "metrics/teacher.json", root / "metrics/teacher.json")
    # The workflow profile as a user would run it; the overrides fit a 2-core test node without accounting.
    cmd = ["timeout", "-s", "KILL", "600", "snakemake", "--workflow-profile", "workflow/profiles/slurm",
           "--slurm-no-account", "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
           "--set-threads", "teacher=2", "proxy=2", "--default-resources", "mem_mb=1500", "runtime=30",
           "--set-resources", "teacher:mem_mb=2000", "--latency-wait", "5", "--retries", "0",
           "results/proxy"]
    start = time.perf_counter()
    result = run(cmd, root, timeout=660)
    log = result.stdout + result.stderr
    assert "Using workflow specific profile workflow/profiles/slurm" in log
    assert "1 of 1 steps (100%) done" in log, log[-3000:]  # the teacher is up to date: only proxy runs
    jobs = _completed_jobs(slurm_cluster / "jobcomp.txt")
    assert [job["JobState"] for job in jobs] == ["COMPLETED"], jobs
    # the job was submitted with the profile's resources (threads -> CPUs)
    assert [int(job["ProcCnt"]) for job in jobs] == [2]
    # sacct reads the same record through SLURM's own tool
    sacct = run(["sacct", "-c", "-n", "-P", "-o", "jobid,state"], root).stdout.split()
    assert len(sacct) == 1 and sacct[0].endswith("|COMPLETED")
    for path in ("results/proxy/train.parquet", "results/proxy/dev.parquet"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    print(f"proxy through SLURM: {time.perf_counter() - start:.1f} s")
