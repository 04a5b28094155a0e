"""params.yaml checks: one-line errors naming the key, the value and what is allowed."""
from __future__ import annotations

import copy

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
    (lambda p: p.update(task="sst3"), "task = 'sst3' is invalid: unknown GLUE task 'sst3'"),
    (lambda p: p["space"].update(hidden=[100], heads=[3, 7]), "space has no valid architecture"),
    (lambda p: (p["distill_topk"].update(k=5), p["search"].update(candidates=3)),
     "distill_topk.k = 5 exceeds search.candidates = 3"),
    (lambda p: p["search"].update(strategy="grid"), "unknown search strategy 'grid'; known: "),
    (lambda p: p["search"].update(strategy="evolution", strategy_kwargs={"populaton_size": 4}),
     "unknown key search.strategy_kwargs.populaton_size for strategy 'evolution' (allowed: population_size"),
    (lambda p: p["distill_full"]["losses"].append({"name": "hiden", "weight": 1}), "unknown loss 'hiden'"),
    (lambda p: p["search"]["reward"].update(alpha=0.5), "search.reward.alpha = 0.5 is invalid"),
    (lambda p: p["latency"].pop("repeats"), "latency: 'repeats' is a required property"),
    (lambda p: p["search"].update(prescreen={"min_speedup": 5, "max_speedup": 3}),
     "search.prescreen.min_speedup = 5 exceeds max_speedup = 3"),
    (lambda p: p["search"].update(prescreen={"max_speed": 3}), "unknown key search.prescreen.max_speed"),
])
def test_bad_params_get_one_line_errors(mutate, expected):
    assert expected in _bad(mutate)


def test_unreadable_params_file(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "p.yaml")
    (tmp_path / "q.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ParamsError, match="must hold a mapping"):
        load_params(tmp_path / "q.yaml")
