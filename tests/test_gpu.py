"""The tiny pipeline's search-task stages on a CUDA GPU, in fp32 and in bf16, against the same stages on the
CPU of the same machine (real SST-2 rows, the real teacher); and a search that returns each candidate's GPU
memory before the next. Skipped where torch sees no CUDA GPU.

With KDNAS_GPU_TIMES=<file.csv> the wall-clock seconds of every stage of the three runs are written there
(the README's GPU figures come from such a file in bench/out/)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import make_pipeline_copy, run_stages_in_process, tiny_params
from kdnas.arch import Arch
from kdnas.cache import load_encoded
from kdnas.device import Compute
from kdnas.pipeline.common import load_teacher
from kdnas.search.evaluator import SerialEvaluator
from kdnas.tasks import get_task

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch here")]

SEARCH_TASK_STAGES = ("teacher", "transfer", "proxy", "latency_profile", "search", "distill_topk", "latency",
                      "distill_full", "evaluate")
RUNS = (("cpu", "fp32"), ("cuda", "fp32"), ("cuda", "bf16"))
# largest dev-accuracy difference from the CPU run (200 dev rows: one row is 0.5 points); bf16 rounds every
# matmul to 8 bits of mantissa, so its runs may drift further
TOLERANCE = {"fp32": 0.02, "bf16": 0.04}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    out = {}
    for device, precision in RUNS:
        params = tiny_params()
        params["compute"] = {"device": device, "precision": precision}
        params["glue"]["tasks"] = {}
        params["latency"]["backends"] = ["eager"]
        root = make_pipeline_copy(tmp_path_factory.mktemp(f"{device}-{precision}") / "project", params)
        torch.cuda.reset_peak_memory_stats()
        seconds = run_stages_in_process(root, params, SEARCH_TASK_STAGES)
        out[device, precision] = {"root": root, "seconds": seconds, "peak_bytes": torch.cuda.max_memory_allocated(),
                                  "evaluate": json.loads((root / "metrics" / "evaluate.json").read_text())}
    if os.environ.get("KDNAS_GPU_TIMES"):
        rows = [{"device": d, "precision": p, "stage": stage, "seconds": round(s, 2), "gpu": torch.cuda.get_device_name(0),
                 "torch": torch.__version__}
                for (d, p), run in out.items() for stage, s in run["seconds"].items()]
        pd.DataFrame(rows).to_csv(os.environ["KDNAS_GPU_TIMES"], index=False)
    return out


def test_device_cpu_leaves_the_gpu_untouched_and_cuda_trains_on_it(runs):
    assert runs["cpu", "fp32"]["peak_bytes"] == 0
    for precision in ("fp32", "bf16"):
        assert runs["cuda", precision]["peak_bytes"] > 22_000_000 * 4  # at least the teacher's fp32 weights


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_tiny_pipeline_on_cuda_scores_like_the_cpu_run(runs, precision):
    cpu, gpu = runs["cpu", "fp32"]["evaluate"], runs["cuda", precision]["evaluate"]
    for model in ("teacher", "student"):
        ours, theirs = gpu[model]["accuracy"], cpu[model]["accuracy"]
        print(f"{precision} {model}: cuda {ours:.4f} cpu {theirs:.4f}")
        assert abs(ours - theirs) <= TOLERANCE[precision], (model, ours, theirs)


def test_search_returns_each_candidates_gpu_memory_before_the_next(runs):
    root = runs["cuda", "fp32"]["root"]
    params = tiny_params()
    compute = Compute(torch.device("cuda", 0), "fp32")
    teacher, tokenizer = load_teacher(root / "results" / "teacher" / "model", compute=compute)
    proxy = Path(root / "results" / "proxy")
    train, dev = (load_encoded(proxy / f"{split}.parquet", tokenizer, params["data"]["max_length"])
                  for split in ("train", "dev"))
    evaluate = SerialEvaluator(params, teacher, get_task("sst2"), train, dev, compute=compute)
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    after = []
    for key in ("L2-H384-A12-F768", "L1-H128-A4-F384", "L2-H384-A12-F768"):
        evaluate([Arch.from_key(key)])
        after.append(torch.cuda.memory_allocated())
    print(f"allocated: baseline {baseline}, after each candidate {after}")
    # what stays after the first is the cuBLAS workspace, not a model: the largest student with its AdamW
    # state would be over 100 MB
    assert after[0] - baseline < 32 * 2**20
    assert after[1] == after[2] == after[0]
