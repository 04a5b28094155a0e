"""The search space: shapes, and layer patterns as a fifth dimension that changes weights, not shapes."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from kdnas.errors import KdnasError
from kdnas.models.arch import LAYER_PATTERNS, Arch
from kdnas.search.space import SearchSpace
from kdnas.search.strategies import build_strategy

SCHEMA = Path(__file__).resolve().parents[2] / "workflow/schemas/params.schema.yaml"
FAST = {"random": {}, "evolution": {}, "trbo": {"gp_restarts": 0, "n_candidates": 128}, "kdnas": {"train_epochs": 20}}


def patterned(patterns=("uniform", "bottom")) -> SearchSpace:
    return SearchSpace([2, 3], [384], [12], [384, 1536], max_head_size=32, layer_patterns=patterns, teacher_layers=6)


def test_the_default_space_is_the_shapes_alone():
    space = SearchSpace([1, 2, 3, 4], [128, 192, 256, 384], [4, 6, 8, 12], [384, 768, 1152, 1536], max_head_size=32)
    expected = [Arch(layers, hidden, heads, ffn) for layers in (1, 2, 3, 4) for hidden in (128, 192, 256, 384)
                for heads in (4, 6, 8, 12) for ffn in (384, 768, 1152, 1536)
                if hidden % heads == 0 and hidden // heads <= 32]
    assert space.archs == expected and len(space) == 112
    assert space.dims == ("layers", "hidden", "heads", "ffn") and len(space.encode(expected[0])) == 4


def test_layer_patterns_add_a_dimension_of_layer_sets():
    space = patterned()
    assert space.dims[-1] == "layer_pattern"
    assert [a.key for a in space.archs] == [
        "L2-H384-A12-F384", "L2-H384-A12-F384-K0.1", "L2-H384-A12-F1536", "L2-H384-A12-F1536-K0.1",
        "L3-H384-A12-F384", "L3-H384-A12-F384-K0.1.2", "L3-H384-A12-F1536", "L3-H384-A12-F1536-K0.1.2"]
    bottom = Arch.from_key("L3-H384-A12-F384-K0.1.2")
    assert space.coords(bottom) == {"layers": 3, "hidden": 384, "heads": 12, "ffn": 384, "layer_pattern": "bottom"}
    assert space.encode(bottom).tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert space.encode(bottom.shape).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_a_single_pattern_gives_every_student_its_layers_without_a_dimension():
    space = SearchSpace([2, 3], [384], [12], [384], max_head_size=32, layer_patterns=["early_last"], teacher_layers=6)
    assert space.dims == SearchSpace.SHAPE_DIMS
    assert [a.key for a in space.archs] == ["L2-H384-A12-F384-K1.5", "L3-H384-A12-F384-K1.2.5"]


def test_patterns_that_give_the_same_layers_give_one_student():
    # one layer of six: uniform and top both keep layer 5
    space = SearchSpace([1], [384], [12], [384], max_head_size=32, layer_patterns=["uniform", "top", "bottom"],
                        teacher_layers=6)
    assert [a.key for a in space.archs] == ["L1-H384-A12-F384", "L1-H384-A12-F384-K0"]


def test_mutation_changes_one_dimension_and_stays_in_the_space():
    space, rng = patterned(), np.random.default_rng(0)
    start = Arch.from_key("L3-H384-A12-F384-K0.1.2")
    seen = set()
    for _ in range(40):
        child = space.mutate(start, rng)
        assert space.is_valid(child)
        changed = {d for d in space.dims if space.coords(child)[d] != space.coords(start)[d]}
        assert len(changed) == 1
        seen |= changed
    assert seen == {"layers", "ffn", "layer_pattern"}  # hidden and heads have one choice each


@pytest.mark.parametrize("name", ["random", "evolution", "trbo", "kdnas"])
def test_every_strategy_searches_the_patterned_space(name):
    space = patterned()
    strategy = build_strategy(name, space, seed=0, **FAST[name])
    keys = []
    while len(keys) < len(space):
        for arch in strategy.ask(1):
            # a reward that prefers the bottom layers: what a strategy must be able to see
            strategy.tell(arch, 0.5 + 0.1 * bool(arch.layer_set) + 0.01 * arch.layers)
            keys.append(arch.key)
    assert sorted(keys) == sorted(a.key for a in space.archs)


def test_layer_patterns_need_a_teacher_and_known_names():
    with pytest.raises(KdnasError, match="unknown pattern 'middle'"):
        SearchSpace([3], [384], [12], [384], layer_patterns=["uniform", "middle"], teacher_layers=6)
    with pytest.raises(KdnasError, match="need space.init: inherit"):
        SearchSpace([3], [384], [12], [384], layer_patterns=["uniform", "bottom"])
    # the latency profile reads shapes only: without the teacher's depth the patterns are left out
    block = {"layers": [3], "hidden": [384], "heads": [12], "ffn": [384], "layer_patterns": ["uniform", "bottom"]}
    assert [a.key for a in SearchSpace.from_params(block).archs] == ["L3-H384-A12-F384"]
    assert len(SearchSpace.from_params(block, teacher_layers=6)) == 2


def test_every_pattern_keeps_the_whole_teacher_when_the_student_is_as_deep():
    for name, pattern in LAYER_PATTERNS.items():
        assert pattern(6, 6) == [0, 1, 2, 3, 4, 5], name
        assert all(len(set(pattern(6, n))) == n and sorted(pattern(6, n)) == pattern(6, n) for n in (1, 2, 3, 4, 5))
    assert LAYER_PATTERNS["early_last"](6, 3) == [1, 2, 5] and LAYER_PATTERNS["early_last"](6, 2) == [1, 5]


def test_the_schema_names_every_pattern():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["space"]["properties"]["layer_patterns"]["items"]["enum"] == list(LAYER_PATTERNS)
