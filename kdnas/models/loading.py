"""Loading teachers and saved models: backbone resolution, clear errors, no remote code unless asked."""
from __future__ import annotations

from pathlib import Path

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from kdnas.data.tasks import Task
from kdnas.device import CPU, Compute
from kdnas.models.backbone import ModelError, check_model_folder, resolve_backbone  # noqa: F401 (re-exported)

transformers.logging.set_verbosity_error()  # load reports are noise in stage logs
transformers.utils.logging.disable_progress_bar()


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)


def load_pretrained_for_task(backbone: str, task: Task, trust_remote_code: bool = False):
    """A pretrained encoder with a fresh classification (or regression) head for ``task``."""
    source = resolve_backbone(backbone)
    kwargs = {"num_labels": task.num_labels, "trust_remote_code": trust_remote_code}
    if task.is_regression:
        kwargs["problem_type"] = "regression"
    else:
        kwargs["id2label"] = dict(enumerate(task.labels))
        kwargs["label2id"] = {label: i for i, label in enumerate(task.labels)}
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, **kwargs)
        tokenizer = load_tokenizer(source, trust_remote_code)
    except Exception as error:  # noqa: BLE001 (corrupt weights, no network, remote code refused): one line
        raise ModelError(f"cannot load teacher.backbone = {backbone!r}: {str(error).strip().splitlines()[0]}") from None
    return model, tokenizer


def load_finetuned_teacher(backbone: str, task: Task, trust_remote_code: bool = False):
    """An already fine-tuned sequence classifier, its head reordered to ``task``'s classes.

    The head is checked against the task (:func:`kdnas.models.teacher_head.head_order`); the final layer's rows are
    permuted so output ``i`` scores the task's class ``i`` (the order every later stage reads), and the config
    is given the task's labels. Returns (model, tokenizer, how the classes were matched).
    """
    from kdnas.models.teacher_head import head_order

    source = resolve_backbone(backbone)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(source, trust_remote_code=trust_remote_code)
        tokenizer = load_tokenizer(source, trust_remote_code)
    except Exception as error:  # noqa: BLE001 (as in load_pretrained_for_task): one line
        raise ModelError(f"cannot load teacher.backbone = {backbone!r}: {str(error).strip().splitlines()[0]}") from None
    order = head_order(model.config.to_dict(), task, f"teacher.backbone = {backbone!r} (teacher.finetune: false)")
    final = _final_layer(model)
    with torch.no_grad():
        final.weight.copy_(final.weight[list(order.outputs)].clone())
        final.bias.copy_(final.bias[list(order.outputs)].clone())
    if task.is_regression:
        model.config.problem_type = "regression"
    else:
        model.config.id2label = dict(enumerate(task.labels))
        model.config.label2id = {label: i for i, label in enumerate(task.labels)}
    model.eval()
    return model, tokenizer, order


def _final_layer(model) -> torch.nn.Linear:
    """The classification head's output layer (BERT: a Linear; RoBERTa-style: the MLP's out_proj)."""
    head = model.get_submodule("classifier")
    return head.out_proj if hasattr(head, "out_proj") else head


def start_regression_head_at(model, mean: float) -> None:
    """Sets a regression head's output bias to the training labels' mean.

    A fresh head predicts about 0 while STS-B scores average about 2.7: with a short CPU budget the
    fine-tuning spends its steps chasing that offset instead of the similarity (measured: bias 0.0015
    after 94 steps, dev Pearson 0.15).
    """
    with torch.no_grad():
        _final_layer(model).bias.fill_(float(mean))


def load_model(path: str | Path, attn_implementation: str | None = None):
    """Loads a fine-tuned model saved by this pipeline (safetensors only, no remote code)."""
    path = Path(path)
    check_model_folder(path)
    try:
        kwargs = {"use_safetensors": True}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    except Exception as error:  # corrupted weights, wrong format: one line naming the folder
        raise ModelError(f"cannot load model from {path}: {str(error).splitlines()[0]}") from None
    model.eval()
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model, tokenizer, path: str | Path) -> None:
    """Saves model (safetensors) and tokenizer into ``path`` (callers pass an atomic temp path)."""
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def check_tokenizer_matches(tokenizer, model) -> None:
    """Raises when the tokenizer's vocabulary cannot index the model's embedding table."""
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise ModelError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding table has {vocab}")



def load_model_and_tokenizer(path, attn_implementation: str | None = None, compute: Compute = CPU):
    """A saved model, teacher or student (on ``compute``'s device), and its tokenizer; refuses a tokenizer whose
    vocabulary the model cannot index."""
    model = load_model(path, attn_implementation=attn_implementation)
    tokenizer = load_tokenizer(str(path))
    check_tokenizer_matches(tokenizer, model)
    return compute.place(model), tokenizer
