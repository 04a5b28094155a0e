"""Distillation losses: logit, label, intermediate-layer (hidden, attention, attention_relation) and BERT-EMD."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from kdnas.distillation.losses import LOSSES, build_loss, check_loss_specs
from kdnas.distillation.losses.emd import emd_flow, update_layer_weights
from kdnas.distillation.losses.intermediate import layer_mapping
from kdnas.errors import KdnasError

torch.set_num_threads(1)

B, T, C = 3, 7, 2


def _mask(batch=B, length=T, pads=(0, 2, 4)):
    """Token mask with ``pads[b]`` padded positions at the end of row b."""
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, p in enumerate(pads[:batch]):
        if p:
            mask[b, -p:] = 0
    return mask


def _outputs(seed, layers=3, hidden=16, heads=4, mask=None):
    """Random model outputs in the dict form the training loop passes to losses."""
    g = torch.Generator().manual_seed(seed)
    mask = _mask() if mask is None else mask
    keys = mask.bool()[:, None, None, :]
    attentions = []
    for _ in range(layers):
        scores = torch.randn(B, heads, T, T, generator=g).masked_fill(~keys, float("-inf"))
        attentions.append(scores.softmax(-1))  # like HF: padded keys get zero probability
    return {"logits": torch.randn(B, C, generator=g),
            "hidden_states": tuple(torch.randn(B, T, hidden, generator=g) for _ in range(layers + 1)),
            "attentions": tuple(attentions), "attention_mask": mask}


def _copy(out):
    return {"logits": out["logits"].clone(), "hidden_states": tuple(h.clone() for h in out["hidden_states"]),
            "attentions": tuple(a.clone() for a in out["attentions"]), "attention_mask": out["attention_mask"]}


def _perturb(out, seed=99, scale=0.5):
    """A different student: noisy hidden states and logits, re-normalised noisy attentions."""
    g = torch.Generator().manual_seed(seed)
    new = _copy(out)
    new["logits"] = out["logits"] + scale * torch.randn(out["logits"].shape, generator=g)
    new["hidden_states"] = tuple(h + scale * torch.randn(h.shape, generator=g) for h in out["hidden_states"])
    keys = out["attention_mask"].bool()[:, None, None, :]
    new["attentions"] = tuple((a.clamp_min(1e-6).log() + torch.randn(a.shape, generator=g))
                              .masked_fill(~keys, float("-inf")).softmax(-1) for a in out["attentions"])
    return new


def _config(hidden, layers, heads):
    return BertConfig(vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=2 * hidden, max_position_embeddings=32, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, num_labels=C, attn_implementation="eager")


def _build(name, student_config=None, teacher_config=None, **kwargs):
    return LOSSES.get(name)(temperature=2.0, regression=False, student_config=student_config,
                            teacher_config=teacher_config, **kwargs)


SAME_WIDTH_LOSSES = [
    ("logit_kd", {}),
    ("hidden", {"mapping": "uniform"}),
    ("hidden", {"mapping": "last"}),
    ("hidden", {"mapping": "uniform+last", "embeddings": True}),
    ("attention", {}),
    ("attention_relation", {}),
    ("attention_relation", {"relation_heads": 2}),
    ("emd", {}),
    ("emd", {"attention": True, "embeddings": False}),
]


@pytest.mark.parametrize("name, kwargs", SAME_WIDTH_LOSSES)
def test_loss_is_zero_for_identical_student_and_positive_otherwise(name, kwargs):
    torch.manual_seed(0)
    teacher = _outputs(1)
    loss = _build(name, **kwargs)
    same = loss(_copy(teacher), teacher, None)
    different = loss(_perturb(teacher), teacher, None)
    assert same.ndim == 0 and different.ndim == 0
    assert float(same) == pytest.approx(0.0, abs=1e-5)
    assert float(different) > 1e-3


def test_label_loss_small_when_confidently_right_and_positive_otherwise():
    labels = torch.tensor([0, 1, 1])
    loss = _build("label")
    right = {"logits": 20.0 * torch.nn.functional.one_hot(labels, C).float()}
    wrong = {"logits": -right["logits"]}
    assert float(loss(right, {}, labels)) < 1e-6
    assert float(loss(wrong, {}, labels)) > 1.0


@pytest.mark.parametrize("name", ["logit_kd", "label", "hidden", "attention", "attention_relation", "emd"])
def test_every_loss_is_registered(name):
    assert LOSSES.get(name) is not None


def test_layer_mapping_hand_computed():
    assert layer_mapping(3, 6, "uniform") == [[2], [4], [6]]
    assert layer_mapping(3, 6, "last") == [[], [], [6]]
    # floor(i * 6 / 3) and 6 - 3 + i: (2, 4), (4, 5), (6, 6) -> 6 once
    assert layer_mapping(3, 6, "uniform+last") == [[2, 4], [4, 5], [6]]
    assert layer_mapping(4, 6, "uniform") == [[1], [3], [4], [6]]
    assert layer_mapping(2, 2, "uniform+last") == [[1], [2]]


def test_unknown_mapping_is_a_one_line_error():
    with pytest.raises(KdnasError) as error:
        layer_mapping(3, 6, "diagonal")
    message = str(error.value)
    assert "'diagonal'" in message and "uniform+last" in message and "\n" not in message
    with pytest.raises(KdnasError, match="diagonal"):
        _build("hidden", mapping="diagonal")


def test_attention_loss_rejects_different_head_counts():
    with pytest.raises(KdnasError, match="attention_relation") as error:
        _build("attention", _config(32, 2, 2), _config(64, 4, 4))
    assert "\n" not in str(error.value)
    with pytest.raises(KdnasError, match="attention_relation"):
        _build("attention")(_outputs(1, heads=2), _outputs(2, heads=4), None)


@pytest.mark.parametrize("name, kwargs", [("attention", {}), ("emd", {"attention": True})])
@pytest.mark.parametrize("missing", [None, ()])  # sdpa attention returns () instead of maps
def test_missing_attention_maps_are_a_one_line_error(name, kwargs, missing):
    student, teacher = _outputs(1), _outputs(2)
    student["attentions"] = missing
    with pytest.raises(KdnasError, match="eager") as error:
        _build(name, **kwargs)(student, teacher, None)
    assert "\n" not in str(error.value)


def test_relation_heads_must_divide_widths():
    with pytest.raises(KdnasError, match="relation_heads 5"):
        _build("attention_relation", _config(32, 2, 2), _config(64, 4, 4), relation_heads=5)
    # default: 12 does not divide 32 and 48 -> largest divisor of gcd 16 not above 12, i.e. 8
    loss = _build("attention_relation", _config(32, 2, 2), _config(48, 4, 4))
    assert float(loss(_outputs(1, hidden=32), _outputs(2, hidden=48), None)) > 0


@pytest.mark.parametrize("name, kwargs", [
    ("hidden", {"mapping": "uniform+last", "embeddings": True}),
    ("emd", {}),
])
def test_projection_losses_with_different_widths_train_their_projection(name, kwargs):
    torch.manual_seed(0)
    loss = _build(name, _config(16, 2, 4), _config(32, 4, 4), **kwargs)
    student, teacher = _outputs(1, layers=2, hidden=16), _outputs(2, layers=4, hidden=32)
    student["hidden_states"] = tuple(h.requires_grad_() for h in student["hidden_states"])
    value = loss(student, teacher, None)
    value.backward()
    assert float(value.detach()) > 0
    assert loss.projection.weight.shape == (32, 16)
    assert loss.projection.weight.grad is not None and loss.projection.weight.grad.abs().sum() > 0
    assert student["hidden_states"][-1].grad.abs().sum() > 0


def test_attention_relation_handles_different_widths_and_heads_without_parameters():
    loss = _build("attention_relation", _config(16, 2, 2), _config(32, 4, 4), relation_heads=4)
    student, teacher = _outputs(1, layers=2, hidden=16, heads=2), _outputs(2, layers=4, hidden=32, heads=4)
    last = student["hidden_states"][-1].requires_grad_()
    value = loss(student, teacher, None)
    value.backward()
    assert float(value.detach()) > 0 and last.grad.abs().sum() > 0
    assert not list(loss.parameters())


def test_same_width_losses_have_no_parameters():
    for name in ("hidden", "emd"):
        assert not list(_build(name, _config(16, 2, 4), _config(16, 4, 4)).parameters())


def test_emd_flow_known_optimum_2x2():
    half = torch.tensor([0.5, 0.5], dtype=torch.float64)
    flow = emd_flow(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), half, half)
    assert torch.allclose(flow, torch.tensor([[0.5, 0.0], [0.0, 0.5]]))


def test_emd_flow_known_optimum_2x3():
    w_s = torch.tensor([0.5, 0.5], dtype=torch.float64)
    w_t = torch.full((3,), 1 / 3, dtype=torch.float64)
    cost = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]], dtype=torch.float64)
    flow = emd_flow(cost, w_s, w_t)
    expected = torch.tensor([[1 / 3, 1 / 6, 0.0], [0.0, 1 / 6, 1 / 3]], dtype=torch.float64)
    assert torch.allclose(flow, expected)
    assert float((flow * cost).sum()) == pytest.approx(1 / 3)


def test_weight_update_moves_towards_cheaper_layers():
    w = torch.tensor([0.5, 0.5], dtype=torch.float64)
    cost = torch.tensor([[0.1, 1.0], [1.0, 0.5]], dtype=torch.float64)
    flow = emd_flow(cost, w, w)  # diagonal: student 0 / teacher 0 cost 0.1 per unit mass, layer 1 costs 0.5
    new_s, new_t = update_layer_weights(flow, cost, w, w, temperature=1.0)
    # wbar = sum(c) / c = (0.6 / 0.1, 0.6 / 0.5) = (6, 1.2); w = softmax(wbar)
    expected = math.exp(6) / (math.exp(6) + math.exp(1.2))
    for new in (new_s, new_t):
        assert float(new.sum()) == pytest.approx(1.0)
        assert float(new[0]) == pytest.approx(expected)
        assert new[0] > 0.5 > new[1]
    flatter, _ = update_layer_weights(flow, cost, w, w, temperature=10.0)
    assert 0.5 < float(flatter[0]) < float(new_s[0])
    # all-zero cost: no evidence, weights stay uniform
    zero_s, _ = update_layer_weights(flow, torch.zeros(2, 2, dtype=torch.float64), w, w)
    assert torch.allclose(zero_s, w)


def test_emd_module_updates_weights_in_training_mode_only():
    teacher = _outputs(1, layers=2)
    student = _copy(teacher)
    student["hidden_states"] = (teacher["hidden_states"][0], teacher["hidden_states"][1],
                                teacher["hidden_states"][2] + 1.0)  # layer 1 matched exactly, layer 2 not
    loss = _build("emd", _config(16, 2, 4), _config(16, 2, 4))
    uniform = torch.full((2,), 0.5, dtype=torch.float64)
    loss.eval()
    loss(student, teacher, None)
    assert torch.equal(loss.w_s, uniform) and torch.equal(loss.w_t, uniform)
    loss.train()
    loss(student, teacher, None)
    assert loss.w_s[0] > loss.w_s[1] and loss.w_t[0] > loss.w_t[1]
    assert float(loss.w_s.sum()) == pytest.approx(1.0) and float(loss.w_t.sum()) == pytest.approx(1.0)
    assert "w_s" in loss.state_dict() and "w_t" in loss.state_dict()


def _pad(out, extra, seed):
    """Appends ``extra`` junk tokens with mask 0 (junk values also in padded attention rows and columns)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.cat([out["attention_mask"], torch.zeros(B, extra, dtype=torch.long)], 1)
    hidden = tuple(torch.cat([h, 50 * torch.randn(B, extra, h.shape[-1], generator=g)], 1)
                   for h in out["hidden_states"])
    attentions = []
    for a in out["attentions"]:
        big = torch.rand(B, a.shape[1], T + extra, T + extra, generator=g)
        big[:, :, :T, :T] = a
        attentions.append(big)
    return {"logits": out["logits"], "hidden_states": hidden, "attentions": tuple(attentions),
            "attention_mask": mask}


@pytest.mark.parametrize("name, kwargs", [
    ("hidden", {"mapping": "uniform+last", "embeddings": True}),
    ("attention", {}),
    ("attention_relation", {}),
    ("emd", {"attention": True}),
])
def test_padding_does_not_change_masked_losses(name, kwargs):
    teacher = _outputs(1)
    student = _perturb(teacher)
    loss = _build(name, **kwargs).eval()  # eval: emd keeps its weights between the two calls
    plain = loss(student, teacher, None)
    padded = loss(_pad(student, 3, seed=5), _pad(teacher, 3, seed=6), None)
    assert float(padded) == pytest.approx(float(plain), rel=1e-5, abs=1e-7)


def test_build_loss_from_params_style_specs():
    specs = [{"name": "hidden", "weight": 1.0, "kwargs": {"mapping": "uniform+last"}},
             {"name": "emd", "weight": 0.5}]
    check_loss_specs(specs, "distill.losses")
    loss = build_loss(specs, temperature=2.0, regression=False, student_config=_config(32, 2, 2),
                      teacher_config=_config(64, 4, 4))
    assert str(loss) == "1 * hidden + 0.5 * emd"
    assert loss.needs_states is True
    assert loss.needs_attentions is False
    assert loss.terms["hidden"].mapping == "uniform+last"
    names = {name for name, _ in loss.named_parameters()}
    assert {"terms.hidden.projection.weight", "terms.emd.projection.weight"} <= names
    total, parts = loss(_outputs(1, layers=2, hidden=32), _outputs(2, layers=4, hidden=64), None)
    assert set(parts) == {"hidden", "emd"}
    assert not any(part.requires_grad for part in parts.values())  # detached: summed on the device, read rarely
    assert float(total.detach()) == pytest.approx(float(parts["hidden"]) + 0.5 * float(parts["emd"]), rel=1e-5)


def test_end_to_end_tiny_berts_loss_decreases_and_student_stays_plain():
    torch.manual_seed(0)
    student = BertForSequenceClassification(_config(64, 2, 4))
    teacher = BertForSequenceClassification(_config(128, 4, 4)).eval()
    plain_keys = set(BertForSequenceClassification(_config(64, 2, 4)).state_dict())
    specs = [{"name": "logit_kd", "weight": 1.0},
             {"name": "hidden", "weight": 1.0, "kwargs": {"mapping": "uniform+last", "embeddings": True}},
             {"name": "attention", "weight": 1.0},
             {"name": "attention_relation", "weight": 1.0},
             {"name": "emd", "weight": 0.5, "kwargs": {"attention": True}}]
    loss = build_loss(specs, temperature=2.0, regression=False, student_config=student.config,
                      teacher_config=teacher.config).train()
    assert loss.needs_states and loss.needs_attentions
    input_ids = torch.randint(0, 100, (4, 10))
    mask = torch.ones(4, 10, dtype=torch.long)
    mask[1, 7:] = 0
    mask[3, 4:] = 0
    with torch.no_grad():
        t = teacher(input_ids=input_ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    teacher_out = {"logits": t.logits, "hidden_states": t.hidden_states, "attentions": t.attentions,
                   "attention_mask": mask}
    optimizer = torch.optim.AdamW(list(student.parameters()) + list(loss.parameters()), lr=1e-3)
    values = []
    student.train()
    for _ in range(6):
        out = student(input_ids=input_ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        student_out = {"logits": out.logits, "hidden_states": out.hidden_states, "attentions": out.attentions,
                       "attention_mask": mask}
        value, parts = loss(student_out, teacher_out, None)
        assert all(math.isfinite(p) for p in parts.values())
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        values.append(float(value.detach()))
    assert values[-1] < values[0]
    # projections and EMD weights live in the loss, never in the student
    assert set(student.state_dict()) == plain_keys
    assert not any("projection" in key for key in student.state_dict())
    assert {"terms.hidden.projection.weight", "terms.emd.projection.weight", "terms.emd.w_s"} <= set(
        loss.state_dict())
