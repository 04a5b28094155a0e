"""Benchmark for students and distillation recipes on real SST-2 with the pipeline's fine-tuned teacher.

Three questions, one CSV each (bench/out/), and a markdown summary on stdout:
1. init: ``random`` vs ``inherit`` (weight-magnitude and gradient importance) for architectures of different
   size, after the same proxy budget (proxy-dev accuracy) and after distillation on the training subset
   (SST-2 dev accuracy);
2. recipes: logits only / + hidden (uniform) / + hidden (EMD) / + attention relations, on one mid-size
   student: dev accuracy and training seconds per epoch;
3. cache: student training throughput with cached teacher logits vs the teacher in the loop;
4. states: the same for an intermediate loss (logits + hidden), cached teacher states (float16, as the proxy
   stage writes them) vs the teacher in the loop, interleaved in one process, and the loss difference.

Run after `dvc repro` (it reads results/teacher and results/proxy):
    .venv/bin/python bench/distill_recipes.py --train-rows 8000
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

from kdnas.data.batching import encode
from kdnas.data.loading import task_split
from kdnas.data.logit_tables import load_encoded, read_logit_table
from kdnas.data.tasks import task_of
from kdnas.data.teacher_states import TeacherStates, write_states
from kdnas.distillation.importance import gradient_importance
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import predict, train_model
from kdnas.evaluation.metrics import glue_metrics
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.search.candidates import distill_candidate

# the three sizes, then the best 2-layer candidate at full width (init: inherit-* only)
ARCHS = [Arch(3, 384, 12, 768), Arch(2, 256, 8, 768), Arch(1, 384, 12, 384), Arch(2, 384, 12, 1536)]
INITS = ("inherit-gradient", "inherit-magnitude", "random")
RECIPES = {
    "logits": [{"name": "logit_kd", "weight": 1.0}],
    "logits+hidden(uniform)": [{"name": "logit_kd", "weight": 1.0},
                               {"name": "hidden", "weight": 1.0, "kwargs": {"mapping": "uniform", "embeddings": True}}],
    "logits+hidden(EMD)": [{"name": "logit_kd", "weight": 1.0}, {"name": "emd", "weight": 1.0}],
    "logits+attention_relation": [{"name": "logit_kd", "weight": 1.0},
                                  {"name": "attention_relation", "weight": 1.0}],
}


def full_distill(teacher, arch, init, losses, train, dev, task, epochs, lr, seed, teacher_in_loop=False,
                 importance=None):
    student = build_student(teacher, arch, init=init, seed=seed, importance=importance)
    loss = build_loss(losses, temperature=1.0, regression=task.is_regression, student_config=student.config,
                      teacher_config=teacher.config)
    history = train_model(student, train, loss, epochs=epochs, lr=lr, batch_size=32, seed=seed, warmup_ratio=0.05,
                          teacher=teacher, desc=f"{arch.key} {init}", teacher_in_loop=teacher_in_loop)
    dev_acc = glue_metrics(task, dev.labels, predict(student, dev))["accuracy"]
    return dev_acc, history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--train-rows", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--only", choices=["init", "recipes", "cache", "states"], nargs="*")
    parser.add_argument("--states-rows", type=int, default=1000, help="proxy rows per run of the states benchmark")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    params = yaml.safe_load(open(args.params))
    task = task_of(params)
    results, out = Path(args.results), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher, tokenizer = load_model_and_tokenizer(results / "teacher/model", attn_implementation="eager")
    max_len = params["data"]["max_length"]
    frame, logits = read_logit_table(results / "transfer/logits.parquet")
    train = encode(tokenizer, frame.head(args.train_rows), max_len, teacher_logits=logits[: args.train_rows])
    dev_frame = task_split(params, "dev", "dev_size")
    dev = encode(tokenizer, dev_frame, max_len)
    proxy_train = load_encoded(results / "proxy/train.parquet", tokenizer, max_len)
    proxy_dev = load_encoded(results / "proxy/dev.parquet", tokenizer, max_len)
    teacher_acc = glue_metrics(task, dev.labels, predict(teacher, dev))["accuracy"]
    print(f"teacher dev accuracy {teacher_acc:.4f}; training rows {len(train)}, epochs {args.epochs}")
    seed, lr = params["seed"], params["distill_full"]["lr"]
    todo = set(args.only or ["init", "recipes", "cache", "states"])

    if "init" in todo:
        scores = None
        # most informative first; rows are saved as they finish. Phase 1: the proxy budget for every run;
        # phase 2: the full-set distillation, in the same order
        runs = [(arch, name) for arch in ARCHS[:3] for name in INITS[:2]]
        runs += [(arch, "random") for arch in ARCHS[:3]] + [(ARCHS[3], name) for name in INITS[:2]]
        rows = []
        for phase in ("proxy", "full"):
            for i, (arch, name) in enumerate(runs):
                init, importance = ("random", None) if name == "random" else ("inherit", name.split("-")[1])
                imp = None
                if importance == "gradient":
                    if scores is None:  # once, on the proxy rows, as the proxy stage does
                        scores = gradient_importance(teacher, proxy_train, regression=task.is_regression)
                    imp = scores
                if phase == "proxy":  # the search's own proxy budget (search.epochs over proxy-train)
                    _, proxy = distill_candidate(teacher, arch, task, proxy_train, proxy_dev,
                                                 {**params["search"], "lr": lr}, init, seed, importance=imp)
                    rows.append({"arch": arch.key, "init": name, "params": proxy["params"],
                                 "proxy_dev_accuracy": proxy["accuracy"]})
                else:
                    dev_acc, history = full_distill(teacher, arch, init, RECIPES["logits"], train, dev, task,
                                                    args.epochs, lr, seed, importance=imp)
                    rows[i].update({"dev_accuracy": dev_acc, "percent_of_teacher": 100 * dev_acc / teacher_acc,
                                    "train_rows": len(train), "epochs": args.epochs,
                                    "train_seconds": history["seconds"]})
                print(rows[i], flush=True)
                pd.DataFrame(rows).to_csv(out / "init.csv", index=False)  # partial runs keep their results
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))

    if "recipes" in todo:
        rows, arch = [], Arch(3, 384, 12, 768)
        for name, losses in RECIPES.items():
            dev_acc, history = full_distill(teacher, arch, "inherit", losses, train, dev, task, args.epochs, lr, seed)
            rows.append({"arch": arch.key, "recipe": name, "dev_accuracy": dev_acc,
                         "percent_of_teacher": 100 * dev_acc / teacher_acc,
                         "seconds_per_epoch": history["seconds"] / args.epochs})
            print(rows[-1], flush=True)
        pd.DataFrame(rows).to_csv(out / "recipes.csv", index=False)
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))

    if "cache" in todo:
        rows, arch = [], Arch(3, 384, 12, 768)
        subset = encode(tokenizer, frame.head(2000), max_len, teacher_logits=logits[:2000])
        for in_loop in (False, True):
            student = build_student(teacher, arch, seed=seed)
            loss = build_loss(RECIPES["logits"], temperature=1.0, regression=False)
            start = time.perf_counter()
            train_model(student, subset, loss, epochs=1, lr=lr, batch_size=32, seed=seed, teacher=teacher,
                        teacher_in_loop=in_loop, show_progress=False)
            seconds = time.perf_counter() - start
            rows.append({"teacher_signal": "in the loop" if in_loop else "cached logits",
                         "examples_per_second": len(subset) / seconds})
        rows.append({"teacher_signal": "speed-up of the cache",
                     "examples_per_second": rows[0]["examples_per_second"] / rows[1]["examples_per_second"]})
        pd.DataFrame(rows).to_csv(out / "cache.csv", index=False)
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))

    if "states" in todo:
        states_benchmark(args, params, task, proxy_train, out)


def states_benchmark(args, params, task, proxy_train, out) -> None:
    import copy
    import tempfile

    # the search's teacher (default attention implementation), not the eager one loaded for attention maps
    teacher, _ = load_model_and_tokenizer(Path(args.results) / "teacher/model")
    n = args.states_rows
    subset = copy.copy(proxy_train)
    subset.input_ids, subset.token_type_ids = proxy_train.input_ids[:n], proxy_train.token_type_ids[:n]
    subset.labels, subset.teacher_logits = proxy_train.labels[:n], proxy_train.teacher_logits[:n]
    arch, losses, seed = Arch(3, 384, 12, 768), RECIPES["logits+hidden(uniform)"], params["seed"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.states.safetensors"
        start = time.perf_counter()
        write_states(teacher, subset, path, attentions=False)
        write_seconds = time.perf_counter() - start
        states = TeacherStates(path, subset.lengths)
        for repeat in range(2):  # interleaved, so both paths see the same machine load
            for cached in (True, False):
                data = copy.copy(subset)
                data.teacher_states = states if cached else None
                student = build_student(teacher, arch, seed=seed)
                loss = build_loss(losses, temperature=1.0, regression=task.is_regression,
                                  student_config=student.config, teacher_config=teacher.config)
                history = train_model(student, data, loss, epochs=1, lr=params["distill_full"]["lr"], batch_size=32,
                                      seed=seed, teacher=teacher, show_progress=False)
                rows.append({"repeat": repeat, "teacher_signal": history["teacher_signal"],
                             "examples_per_second": history["examples_per_second"],
                             "loss": history["epochs"][0]["loss"], "hidden_loss": history["epochs"][0]["hidden"],
                             "cache_mb": path.stat().st_size / 2**20, "cache_write_seconds": write_seconds})
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "states.csv", index=False)
    speed = frame.groupby("teacher_signal")["examples_per_second"].mean()
    loss = frame.groupby("teacher_signal")["loss"].mean()
    print(f"cached states {speed['cached states']:.1f} ex/s, teacher in the loop {speed['teacher in the loop']:.1f} "
          f"ex/s: {speed['cached states'] / speed['teacher in the loop']:.2f}x; loss relative difference "
          f"{abs(loss['cached states'] - loss['teacher in the loop']) / loss['teacher in the loop']:.2e}")


if __name__ == "__main__":
    main()
