"""Shippable students: the HF folder with readable labels and a model card, plus ONNX with a parity check."""
from __future__ import annotations

from pathlib import Path

import yaml

from kdnas.data.tasks import Task
from kdnas.deploy.onnx_runtime import OrtModel, export_onnx, max_abs_difference
from kdnas.errors import KdnasError

# human-readable class names for the binary tasks whose GLUE files use 0/1
LABEL_NAMES = {"sst2": ("negative", "positive"), "cola": ("unacceptable", "acceptable"),
               "mrpc": ("not_equivalent", "equivalent"), "qqp": ("not_duplicate", "duplicate"),
               "wnli": ("not_entailment", "entailment")}
PARITY_TOLERANCE = 1e-3  # max |logit difference| ONNX Runtime may show against PyTorch


def label_config(model, task: Task) -> None:
    """Label names and problem type in the config, so ``pipeline("text-classification")`` reads them
    (a regression head gets raw scores instead of a sigmoid)."""
    if task.is_regression:
        model.config.problem_type = "regression"
        model.config.id2label, model.config.label2id = {0: "score"}, {"score": 0}
        return
    names = LABEL_NAMES.get(task.name, task.labels)
    model.config.problem_type = "single_label_classification"
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {name: i for i, name in enumerate(names)}


def onnx_with_parity(model, tokenizer, texts: list, path: Path, max_length: int, threads: int,
                     device: str = "cpu", fusion: str = "none") -> float:
    """Exports ``model`` (on the CPU) to ``path`` in the graph form ``fusion`` and returns the largest logit
    difference ONNX Runtime (CPU) shows on ``texts`` (pairs as tuples) against PyTorch in fp32 on ``device``;
    raises when it exceeds PARITY_TOLERANCE."""
    import torch

    from kdnas.deploy.quantize import encode_for_ort

    export_onnx(model, path, fusion)
    firsts = [t[0] if isinstance(t, tuple) else t for t in texts]
    seconds = [t[1] for t in texts] if isinstance(texts[0], tuple) else None
    inputs = {name: torch.from_numpy(ids) for name, ids in encode_for_ort(tokenizer, firsts, seconds, max_length).items()}
    diff = max_abs_difference(model, OrtModel(path, model.config.vocab_size, threads), inputs, device)
    if diff > PARITY_TOLERANCE:
        raise KdnasError(f"ONNX export of {path.parent.name} differs from PyTorch by {diff:.2e} "
                         f"(tolerance {PARITY_TOLERANCE:g})")
    return diff


def _teacher_rows(info: dict) -> str:
    if info.get("teacher_as_given"):
        return "the teacher was used as given (fine-tuned elsewhere, not trained here); "
    return f"the teacher was fine-tuned on {info['teacher_train_rows']:,} training rows; "


def _metric_rows(info: dict, teacher: dict, student: dict) -> list[str]:
    rows = ["| metric | teacher | student | % of teacher |", "|---|---|---|---|"]
    mark = " (GLUE)" if info["is_glue"] else " (main)"
    for name in [m for m in teacher if m != "params"]:
        share = f"{100 * student[name] / teacher[name]:.1f}%" if teacher[name] > 0 else "n/a"
        official = mark if name in info["official"] else ""
        rows.append(f"| {name}{official} | {teacher[name]:.4f} | {student[name]:.4f} | {share} |")
    return rows


def _int8_rows(info: dict) -> list[str]:
    int8 = info.get("int8")
    if not int8:
        return []
    lines = ["", "## int8 (ONNX Runtime)", "",
             f"`model.int8.onnx` is the student quantised to int8 by ONNX Runtime ({int8['method']}: "
             + ("weights int8, activations quantised on the fly" if int8["method"] == "dynamic" else
                "weights and activations int8, activation ranges calibrated on training rows")
             + f"; {int8['bytes'] / 1e6:.1f} MB against {int8['fp32_bytes'] / 1e6:.1f} MB). Both files scored through "
             f"ONNX Runtime on the same {info['dev_rows']:,} dev rows:", "",
             "| metric | fp32 ONNX | int8 ONNX | change (points) |", "|---|---|---|---|"]
    for name, value in int8["fp32"].items():
        lines.append(f"| {name} | {value:.4f} | {int8['int8'][name]:.4f} | {100 * (int8['int8'][name] - value):+.2f} |")
    lines += ["", f"Predictions agree on {100 * int8['agreement']:.1f}% of the dev rows"
              + (" (scores within 0.1)." if info["regression"] else ".")]
    return lines


def model_card(info: dict) -> str:
    """README.md for the exported folder. ``info`` holds task, arch, backbone, metrics (teacher/student),
    train rows, latency rows, ONNX parity, where the task's data came from and the task's params."""
    task, arch, glue = info["task"], info["arch"], info["is_glue"]
    front = {"library_name": "transformers", "pipeline_tag": "text-classification",
             "tags": ["kdnas", "knowledge-distillation", "neural-architecture-search", *(["glue"] if glue else []), task]}
    if info["hub_dataset"]:
        front["datasets"] = [info["hub_dataset"]]
    front["metrics"] = list(info["official"])
    lat = info["latency"]
    title = info["source"] if glue else f"the task {task}"
    data = (f"{info['source']} (`{info['data_dir']}`)" if glue or not info["hub_dataset"] else info["source"])
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {arch}: a distilled BERT student for {title}", "",
             f"A {info['student_params'] / 1e6:.1f}M-parameter student ({info['arch_dims']}) found by kdnas's "
             f"architecture search on {info['search_task']} and distilled from a teacher fine-tuned on {task} "
             f"({info['backbone']}, {info['teacher_params'] / 1e6:.1f}M parameters).", "",
             "## Data", "",
             f"{data}: " + _teacher_rows(info) +
             f"the student learned from the teacher's cached logits on {info['student_train_rows']:,} "
             f"training rows (max length {info['max_length']} tokens). Scores are on {info['dev_rows']:,} dev rows"
             + ("; GLUE's test labels are hidden." if glue else "."), "",
             "## Metrics (dev)", ""] + _metric_rows(info, info["teacher"], info["student"]) + [
             "", "## Latency", "",
             "Measured by kdnas's latency stage (medians of interleaved runs, sequence length "
             f"{lat[0]['seq_len'] if lat else '?'}, {info['hardware']}):", "",
             "| backend | batch | teacher ms | student ms | speed-up | over the fp32 teacher in eager PyTorch |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['backend']} | {r['batch_size']} | {r['teacher_ms']:.1f} | {r['student_ms']:.1f} | {r['speedup']:.1f}x | "
              + (f"{r['speedup_vs_eager']:.1f}x |" if r.get("speedup_vs_eager") else "n/a |") for r in lat]
    lines += _int8_rows(info)
    lines += ["", "## Files", "",
              "`model.safetensors`, `config.json` and the tokenizer load with `transformers`; `model.onnx` "
              f"(inputs input_ids, attention_mask, token_type_ids; output logits) matches PyTorch within "
              f"{info['onnx_max_abs_diff']:.1e} on {info['parity_rows']} dev rows."
              + (" Its graph is fused by ONNX Runtime's transformer optimizer (one `Attention` per layer, fused "
                 "layer norms and GELU), so it runs on ONNX Runtime only." if info.get("fusion") == "bert" else ""),
              "",
              "```python", "from transformers import pipeline", "",
              "classify = pipeline(\"text-classification\", model=\"path/to/this/folder\")"]
    example = "{\"text\": \"A man is playing a guitar.\", \"text_pair\": \"A man plays music.\"}" if info["pair"] \
        else "\"a gripping, beautifully acted film\""
    lines += [f"classify({example})" + ("  # score: the predicted similarity" if info["regression"] else ""),
              "```", "", "## Training params", "", "```yaml", yaml.safe_dump(info["params"], sort_keys=False).strip(),
              "```", ""]
    return "\n".join(lines)
