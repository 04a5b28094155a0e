"""Training checkpoints on real SST-2 rows and the real teacher: a killed or SIGTERM'd run resumes and ends
with exactly the tensors of an uninterrupted run; a checkpoint of other params is never resumed."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import (
    GLUE_DIR,
    REPO,
    make_pipeline_copy,
    run,
    sst2_with_teacher_logits,
    tiny_params,
    tool_env,
    with_local_glue,
    write_params,
)
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_post_hook

from kdnas.device import CPU, Compute, resolve_compute
from kdnas.distillation.checkpoint import (
    Checkpoint,
    StopRequested,
    stage_checkpoint,
    stage_key,
)
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import train_model
from kdnas.errors import KdnasError
from kdnas.models.arch import Arch
from kdnas.pipeline.manifest import MANIFEST

# --- in process: the whole training state round-trips (EMD's layer weights and projection included) ---

@pytest.fixture(scope="module")
def small_setup():
    return sst2_with_teacher_logits(24, 16)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch here")


def _train(setup, checkpoint=None, compute=CPU):
    task, teacher, data = setup
    teacher = copy.deepcopy(teacher)  # training places it on the device: the fixture's stays on the CPU
    student = build_student(teacher, Arch.from_key("L1-H128-A4-F384"), init="inherit", seed=3)
    torch.manual_seed(3)  # the loss's projection
    loss = build_loss([{"name": "logit_kd", "weight": 1.0}, {"name": "emd", "weight": 1.0}], temperature=1.0,
                      regression=False, student_config=student.config, teacher_config=teacher.config)
    history = train_model(student, data, loss, epochs=2, lr=1e-3, batch_size=8, seed=3, teacher=teacher,
                          warmup_ratio=0.2, show_progress=False, checkpoint=checkpoint, compute=compute)
    return student, loss, history


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _stop_by_sigterm_at_step_4(setup, checkpoint, compute=CPU) -> None:
    steps = []

    def sigterm_at_step_4(optimizer, args, kwargs):
        steps.append(1)
        if len(steps) == 4:  # mid-epoch (3 steps per epoch), between two checkpoint intervals
            os.kill(os.getpid(), signal.SIGTERM)

    hook = register_optimizer_step_post_hook(sigterm_at_step_4)
    try:
        with pytest.raises(StopRequested, match="after step 4 of 6"):
            _train(setup, checkpoint, compute)
    finally:
        hook.remove()


def test_training_stopped_by_sigterm_resumes_bit_identical(small_setup, tmp_path):
    ref_student, ref_loss, ref_history = _train(small_setup)
    checkpoint = Checkpoint(tmp_path / "ck", every_steps=5)
    _stop_by_sigterm_at_step_4(small_setup, checkpoint)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is only there while training
    assert checkpoint.load_training()["step"] == 4
    student, loss, history = _train(small_setup, checkpoint)
    assert _same_tensors(student.state_dict(), ref_student.state_dict())
    assert _same_tensors(loss.state_dict(), ref_loss.state_dict())  # projection and EMD layer weights
    uniform = torch.full((6,), 1 / 6, dtype=torch.float64)
    assert not torch.allclose(ref_loss.state_dict()["terms.emd.w_t"], uniform)  # that state did move
    assert history["epochs"] == ref_history["epochs"] and history["steps"] == ref_history["steps"] == 6


@CUDA
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_on_a_gpu_resumes_from_its_checkpoint(small_setup, tmp_path, precision):
    """On a GPU a resumed run restores the CUDA generator too (the dropout masks); it ends within float noise of
    the uninterrupted run: some kernels (the embedding's backward) add in an unspecified order."""
    compute = Compute(torch.device("cuda", 0), precision)
    ref_student, _, ref_history = _train(small_setup, compute=compute)
    checkpoint = Checkpoint(tmp_path / "ck", every_steps=5, compute=compute)
    _stop_by_sigterm_at_step_4(small_setup, checkpoint, compute)
    assert "cuda" in checkpoint.load_training()["rng"]
    student, _, history = _train(small_setup, checkpoint, compute)
    ours, theirs = student.state_dict(), ref_student.state_dict()
    worst = max(float((ours[k].float() - theirs[k].float()).abs().max()) for k in ours)
    print(f"{precision}: resumed vs uninterrupted, largest weight difference {worst:.2e}; "
          f"bit-identical: {_same_tensors(ours, theirs)}")
    assert worst < 1e-4
    assert history["steps"] == ref_history["steps"] == 6


def test_a_checkpoint_of_another_device_type_or_precision_is_refused_and_kept(small_setup, tmp_path):
    checkpoint = Checkpoint(tmp_path / "ck", every_steps=5)  # cpu/fp32
    _stop_by_sigterm_at_step_4(small_setup, checkpoint)
    bf16 = Compute(torch.device("cpu"), "bf16")
    elsewhere = Checkpoint(tmp_path / "ck", every_steps=5, compute=bf16)
    expected = "was trained on cpu/fp32, this run trains on cpu/bf16"
    with pytest.raises(KdnasError, match=expected):
        elsewhere.check_compute()  # what stage_checkpoint asks before a stage loads anything
    with pytest.raises(KdnasError, match=expected):
        _train(small_setup, elsewhere, bf16)
    assert checkpoint.load_training()["step"] == 4  # nothing lost: the same params on the CPU still resume it


def test_a_stage_refuses_a_checkpoint_from_another_kind_of_machine_in_one_line_before_loading_anything(tmp_path):
    """``compute: auto`` resolves by machine: a teacher run interrupted on a GPU node and rerun where there is
    none (or the other way round) finds a checkpoint under the same key; the stage refuses it (exit 2) and
    keeps it."""
    params = tiny_params()
    params["checkpoint"] = {"dir": "checkpoints", "every_steps": 2}
    path = write_params(tmp_path / "params.yaml", params)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        folder = stage_checkpoint("teacher/sst2", params, [GLUE_DIR / "SST-2" / "train.tsv"],
                                  tracked=MANIFEST["teacher"].params).folder
    kind = resolve_compute(params).kind
    other = "cuda/bf16" if kind == "cpu/fp32" else "cpu/fp32"  # as a run of these params elsewhere leaves it
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "compute.json").write_text(json.dumps({"kind": other}))
    (tmp_path / folder / "train.pt").write_bytes(b"a GPU training state")
    # one line on stderr: no training started (its progress bar would be there)
    result = run([sys.executable, str(REPO / "stages" / "teacher.py"), "--params", str(path), "--model", "model",
                  "--metrics", "teacher.json"], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"teacher: error: checkpoint checkpoints/teacher/sst2/{folder.name} was trained on {other}, this run "
        f"trains on {kind}: set compute.device and compute.precision to match it to resume, or delete "
        f"checkpoints/teacher/sst2/{folder.name} to start over"]
    assert (tmp_path / folder / "train.pt").read_bytes() == b"a GPU training state"


# --- stage CLIs in subprocesses: SIGKILL / SIGTERM, rerun, compare with the uninterrupted pipeline ---

def _start(stage: str, args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "stages" / f"{stage}.py"), *args], cwd=cwd, env=tool_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, folder: Path, not_key: str = "", timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not [p for p in folder.glob("*/train.pt") if p.parent.name != not_key]:
        assert proc.poll() is None, f"stage ended before any checkpoint: {proc.communicate()}"
        assert time.monotonic() < end, "no checkpoint appeared"
        time.sleep(0.05)


def _params(tmp_path: Path, every: int = 2, **teacher) -> Path:
    params = tiny_params()
    params["checkpoint"] = {"dir": "checkpoints", "every_steps": every}
    params["teacher"].update(teacher)
    return write_params(tmp_path / f"params{len(list(tmp_path.glob('params*')))}.yaml", params)


@pytest.mark.slow
def test_teacher_killed_resumes_to_the_uninterrupted_model_and_ignores_a_stale_checkpoint(dvc_run, tmp_path):
    folder = tmp_path / "checkpoints" / "teacher" / "sst2"
    out = ["--model", "model", "--metrics", "teacher.json"]
    # a checkpoint made under other params (another learning rate) must never be resumed
    stale = _start("teacher", ["--params", str(_params(tmp_path, lr=3e-4)), *out], tmp_path)
    _wait_for_checkpoint(stale, folder)
    stale.kill()
    stale.wait()
    stale_key = next(folder.iterdir()).name

    params = str(_params(tmp_path))
    first = _start("teacher", ["--params", params, *out], tmp_path)
    _wait_for_checkpoint(first, folder, not_key=stale_key)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (tmp_path / "model").exists()  # nothing half-written
    assert stale_key in {p.name for p in folder.iterdir()}  # kept until a run of this stage finishes
    step = torch.load(next(p for p in folder.glob("*/train.pt") if p.parent.name != stale_key),
                      weights_only=True)["step"]

    rerun = _start("teacher", ["--params", params, *out], tmp_path)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-2000:]
    assert f"resuming from the checkpoint at step {step} of 13" in stderr
    ours = load_file(tmp_path / "model" / "model.safetensors")
    theirs = load_file(dvc_run / "results" / "teacher" / "model" / "model.safetensors")
    assert _same_tensors(ours, theirs)
    assert (tmp_path / "teacher.json").read_text() == (dvc_run / "metrics" / "teacher.json").read_text()
    assert not (tmp_path / "checkpoints").exists()  # removed, the stale one too, once the outputs are written


@pytest.mark.slow
def test_distill_full_stopped_by_sigterm_says_so_and_resumes_bit_identical(dvc_run, tmp_path):
    params = _params(tmp_path, every=3)
    r = dvc_run / "results"
    args = ["--params", str(params), "--teacher", str(r / "teacher/model"), "--transfer",
            str(r / "transfer/logits.parquet"), "--ranking", str(r / "distill_topk/ranking.json"),
            "--latency", str(r / "latency/latency.csv"), "--proxy", str(r / "proxies" / "sst2"), "--model", "student",
            "--summary", "summary.json"]
    first = _start("distill_full", args, tmp_path)
    _wait_for_checkpoint(first, tmp_path / "checkpoints" / "distill_full" / "sst2")
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 143
    message = [line for line in stderr.splitlines() if line.startswith("distill_full: ")]
    assert len(message) == 1 and "stopped by SIGTERM after step" in message[0] and "rerun" in message[0]
    assert not (tmp_path / "student").exists()

    rerun = _start("distill_full", args, tmp_path)
    _, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-2000:]
    assert "resuming from the checkpoint" in stderr
    ours = load_file(tmp_path / "student" / "model.safetensors")
    theirs = load_file(r / "student/model/model.safetensors")
    assert _same_tensors(ours, theirs)


@pytest.mark.slow
def test_baselines_stopped_after_one_student_keep_it_and_resume_to_the_uninterrupted_models(dvc_run, tmp_path):
    r = dvc_run / "results"
    args = ["--params", str(_params(tmp_path, every=3)), "--teacher", str(r / "teacher/model"), "--transfer",
            str(r / "transfer/logits.parquet"), "--proxy", str(r / "proxies" / "sst2"), "--models", "models", "--summary", "summary.json"]
    first = _start("baselines", args, tmp_path)  # two workers (tiny params): both students train at once
    folder = tmp_path / "checkpoints" / "baselines" / "sst2"
    end = time.monotonic() + 300
    # one student finished, the other training (SIGTERM reaches its worker, which stops at a step boundary)
    while True:
        done = {p.stem for p in folder.glob("*/done/*.json")}
        training = {p.parent.name for p in folder.glob("*/*/train.pt")} - done
        if done and training:
            break
        assert first.poll() is None and time.monotonic() < end, "no student finished while the other trained"
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 143, stderr[-2000:]
    assert "baselines: stopped: stopped by SIGTERM after step" in stderr
    assert not (tmp_path / "models").exists()  # outputs appear whole or not at all

    rerun = _start("baselines", args, tmp_path)
    _, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-2000:]
    for arch in done:
        assert f"{arch}: distilled before the run stopped" in stderr
    assert "resuming from the checkpoint at step" in stderr  # the other one, in its worker
    for arch in ("L3-H384-A12-F384", "L2-H384-A12-F384"):
        assert _same_tensors(load_file(tmp_path / "models" / arch / "model.safetensors"),
                             load_file(r / "baselines/models" / arch / "model.safetensors"))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_snakemake_sigkilled_mid_training_unlocks_reruns_incomplete_and_resumes(dvc_run, tmp_path):
    """The README's recovery after a SIGKILL of Snakemake itself and its job: `--unlock`, then
    `--rerun-incomplete`; the teacher resumes from its checkpoint and ends with the DVC run's weights."""
    params = tiny_params()
    params["checkpoint"] = {"dir": "checkpoints", "every_steps": 2}
    root = make_pipeline_copy(tmp_path / "project", params)
    with_local_glue(root, params)
    target = ["--workflow-profile", "workflow/profiles/local", "metrics/teacher.json"]  # the DVC run's 2 threads
    first = subprocess.Popen(["snakemake", *target], cwd=root, env=tool_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_checkpoint(first, root / "checkpoints" / "teacher" / "sst2")
    os.killpg(first.pid, signal.SIGKILL)  # Snakemake and its job, as a node failure or `kill -9` would
    first.wait()
    locked = run(["snakemake", *target], root, check=False)
    assert locked.returncode != 0 and "Directory cannot be locked" in locked.stderr + locked.stdout
    run(["snakemake", "--unlock", *target], root)
    rerun = run(["snakemake", "--rerun-incomplete", *target], root, timeout=600)
    assert "1 of 1 steps (100%) done" in rerun.stdout + rerun.stderr
    assert "resuming from the checkpoint at step" in (root / "logs/teacher.log").read_text()
    ours = load_file(root / "results/teacher/model/model.safetensors")
    assert _same_tensors(ours, load_file(dvc_run / "results/teacher/model/model.safetensors"))
    assert not (root / "checkpoints").exists()


def test_a_checkpoint_key_follows_only_the_params_its_stage_declares():
    """A change to a param the stage does not read (evaluate's batch size for the teacher) keeps its checkpoint
    resumable; one it reads (the teacher's learning rate), or a changed input, does not."""
    params = tiny_params()
    tracked = MANIFEST["teacher"].params
    key = stage_key("teacher/sst2", params, [GLUE_DIR / "SST-2" / "dev.tsv"], tracked)
    other_eval = copy.deepcopy(params)
    other_eval["evaluate"]["batch_size"] += 1
    assert stage_key("teacher/sst2", other_eval, [GLUE_DIR / "SST-2" / "dev.tsv"], tracked) == key
    other_lr = copy.deepcopy(params)
    other_lr["teacher"]["lr"] *= 2
    assert stage_key("teacher/sst2", other_lr, [GLUE_DIR / "SST-2" / "dev.tsv"], tracked) != key
    assert stage_key("teacher/sst2", params, [GLUE_DIR / "STS-B" / "dev.tsv"], tracked) != key
