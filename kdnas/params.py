"""Loading and checking params.yaml: the JSON Schema first, then the checks a schema cannot express.

Everything that params and the teacher's config.json can tell is checked here, when any stage starts and
when the Snakefile loads, so a bad value never costs minutes of work. The module imports no torch: a bad
params file is refused in about a second.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kdnas.errors import KdnasError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "params.schema.yaml"


class ParamsError(KdnasError):
    """params.yaml breaks the schema or a cross-field rule."""


class ParamsLoader(yaml.SafeLoader):
    """YAML as DVC reads it (YAML 1.2 numbers: ``1e-4`` is a float), and duplicate keys refused.

    PyYAML follows YAML 1.1, where ``1e-4`` (no dot) is a string while DVC's parser (ruamel, YAML 1.2) reads a
    float; one file must mean the same to every tool. PyYAML also lets a repeated key silently win.
    """

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ParamsError(f"{mark.name}:{mark.line + 1}:{mark.column + 1}: duplicate key {key!r} "
                                  f"(first at line {seen[key] + 1})")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def read_yaml(path: Path) -> Any:
    """Parses a params-like YAML file; one-line ParamsError naming file, line and column."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=ParamsLoader)  # noqa: S506 (a SafeLoader subclass)
    except UnicodeDecodeError as error:
        raise ParamsError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ParamsError(f"{where}: not valid YAML: {error.problem or error.context}") from None


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 2000.0 as an integer; the stages index and slice with it, so only real ints pass
    return isinstance(instance, int) and not isinstance(instance, bool)


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<root>"


def _one_line(error: jsonschema.ValidationError) -> str:
    key = _key_path(error)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(error.schema.get("properties", {}))
        extra = error.message.split("'")[1] if "'" in error.message else error.message
        where = f"{key}." if key != "<root>" else ""
        return f"unknown key {where}{extra}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if error.validator == "required":
        return f"{key}: {error.message}"
    return f"{key} = {error.instance!r} is invalid: {error.message}"


def load_schema() -> dict:
    with open(SCHEMA_PATH) as handle:
        return yaml.safe_load(handle)


def _first_error(validator, instance) -> jsonschema.ValidationError | None:
    errors = list(validator.iter_errors(instance))
    # the deepest error names the most specific key
    return max(errors, key=lambda e: len(e.absolute_path)) if errors else None


def validate_params(params: dict[str, Any]) -> dict[str, Any]:
    """Checks params against the schema and cross-field rules; raises ParamsError (one line).

    Returns:
        The same dict, for chaining.
    """
    schema = load_schema()
    error = _first_error(Validator(schema), params)
    if error:
        raise ParamsError(f"params: {_one_line(error)}")
    _check_cross_fields(params, schema)
    return params


def check_kwargs(kwargs: dict | None, properties: dict, where: str, owner: str) -> None:
    """Checks keyword arguments against the schema's ``properties`` for one loss or strategy."""
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    error = _first_error(Validator(schema), kwargs or {})
    if error is None:
        return
    if error.validator == "additionalProperties":
        extra = error.message.split("'")[1]
        raise ParamsError(f"params: unknown key {where}.{extra} for {owner} (allowed: "
                          f"{', '.join(sorted(properties)) or 'none'})")
    raise ParamsError(f"params: {where}.{_key_path(error)} = {error.instance!r} is invalid for {owner}: "
                      f"{error.message}")


def check_loss_specs(specs: list[dict], where: str, schema: dict) -> None:
    """Known names, each once, valid kwargs, and at least one weight above zero."""
    known = schema["$defs"]["loss_kwargs"]
    seen = set()
    for number, spec in enumerate(specs):
        name = spec["name"]
        if name not in known:
            raise ParamsError(f"params: {where}[{number}].name = {name!r} is not a loss (known: {', '.join(known)})")
        if name in seen:
            raise ParamsError(f"params: {where}: loss {name!r} listed twice")
        seen.add(name)
        check_kwargs(spec.get("kwargs"), known[name] or {}, f"{where}[{number}].kwargs", f"loss {name!r}")
    if all(spec["weight"] == 0 for spec in specs):
        raise ParamsError(f"params: {where}: every loss weight is zero; at least one loss must be on")


def _check_cross_fields(params: dict[str, Any], schema: dict) -> None:
    from kdnas.data.tasks import task_of
    from kdnas.search.space import SearchSpace  # numpy only

    _check_custom_tasks(params)
    try:
        task_of(params)
    except KdnasError as error:
        raise ParamsError(f"params: task = {params['task']!r} is invalid: {error}") from None
    _check_glue(params, schema)
    search = params["search"]
    k = params["distill_topk"]["k"]
    if k > search["candidates"]:
        raise ParamsError(f"params: distill_topk.k = {k} exceeds search.candidates = "
                          f"{search['candidates']} (top-k must come from evaluated trials)")
    bounds = search.get("prescreen") or {}
    low, high = bounds.get("min_speedup"), bounds.get("max_speedup")
    if high == "hand_crafted" and not params["baselines"]["keep_every"]:
        raise ParamsError("params: search.prescreen.max_speedup = 'hand_crafted' takes its bound from the hand-crafted "
                          "family, but baselines.keep_every is empty; give a number or null")
    if low is not None and isinstance(high, (int, float)) and low > high:
        raise ParamsError(f"params: search.prescreen.min_speedup = {low} exceeds max_speedup = {high}")
    check_kwargs(search.get("strategy_kwargs"), schema["$defs"]["strategy_kwargs"][search["strategy"]] or {},
                 "search.strategy_kwargs", f"strategy {search['strategy']!r}")
    for block in ("search", "distill_topk", "distill_full"):
        check_loss_specs(params[block]["losses"], f"{block}.losses", schema)
    patterns = params["space"].get("layer_patterns", ["uniform"])
    if patterns != ["uniform"] and params["space"]["init"] != "inherit":
        raise ParamsError(f"params: space.layer_patterns = {patterns} choose inherited teacher layers, but "
                          f"space.init = {params['space']['init']!r} inherits none; use [uniform] or init: inherit")
    try:
        SearchSpace.from_params(params["space"])  # raises when no architecture is valid
    except KdnasError as error:
        raise ParamsError(str(error)) from None
    _check_space_fits_teacher(params)
    _check_teachers_used_as_given(params)
    _check_search_teachers_share_a_shape(params)
    compute = params["compute"]
    if compute["device"].startswith("cuda") or compute["precision"] in ("bf16", "fp16"):
        from kdnas.device import (
            check_compute,  # imports torch: only when a GPU or mixed precision is asked for
        )

        try:
            check_compute(compute["device"], compute["precision"])
        except KdnasError as error:
            raise ParamsError(str(error)) from None
    _check_search_backend(params)
    if params["latency"].get("device") == "cuda":
        import torch  # only for this check

        if not torch.cuda.is_available():
            raise ParamsError("params: latency.device = 'cuda' but no CUDA GPU is visible to torch here")


def _check_search_backend(params: dict[str, Any]) -> None:
    """An ONNX Runtime search backend is profiled (mode predicted) and timed again by the latency stage."""
    backend = params["search"]["latency"]["backend"]
    if backend == "eager":
        return
    mode = params["search"]["latency"]["mode"]
    if mode != "predicted":
        raise ParamsError(f"params: search.latency.backend = {backend!r} needs search.latency.mode: predicted "
                          f"(got {mode!r}): latency_profile times that runtime, candidates are not timed one by one")
    timed = params["latency"].get("backends", ["eager"])
    if backend not in timed:
        raise ParamsError(f"params: search.latency.backend = {backend!r} is not in latency.backends "
                          f"{timed}: distill_full re-scores the ranked "
                          "candidates on the latency stage's timings of that runtime")
    from kdnas.deploy.ort_session import require_onnxruntime

    require_onnxruntime(f"params: search.latency.backend = {backend!r}", ParamsError)


def _check_custom_tasks(params: dict[str, Any]) -> None:
    """Each ``custom_tasks`` entry reads files or a hub dataset (not both), is classification (labels) or
    regression (not both), and declares metrics of its kind; the schema has checked the keys and types."""
    from kdnas.data.custom_tasks import (
        CLASSIFICATION_METRICS,
        FORMATS,
        REGRESSION_METRICS,
        file_format,
    )

    for name, spec in (params.get("custom_tasks") or {}).items():
        where = f"params: custom_tasks.{name}"
        files = [key for key in ("train_file", "validation_file") if spec.get(key)]
        hub = [key for key in ("dataset", "dataset_config", "train_split", "validation_split") if key in spec]
        if files and hub:
            raise ParamsError(f"{where}: gives both files ({', '.join(files)}) and a hub dataset ({', '.join(hub)}); "
                              "give one")
        if not hub and len(files) < 2:
            missing = {"train_file", "validation_file"} - set(files)
            raise ParamsError(f"{where}: {', '.join(sorted(missing))} missing (give train_file and validation_file, "
                              "or dataset: <hub id>)")
        if hub and "dataset" not in spec:
            raise ParamsError(f"{where}: {', '.join(hub)} given without dataset: <hub id>")
        for key in files:
            if file_format(spec[key]) is None:
                raise ParamsError(f"{where}.{key} = {spec[key]!r}: kdnas reads {', '.join(FORMATS)} files "
                                  "(by their extension)")
        regression = spec.get("regression", False)
        if regression == bool(spec.get("labels")):
            raise ParamsError(f"{where}: give labels (the classes, as the label column writes them) or "
                              "regression: true" + (", not both" if regression else ""))
        labels = [str(label) for label in spec.get("labels") or ()]
        if len(set(labels)) != len(labels):
            raise ParamsError(f"{where}.labels = {spec['labels']}: a class is listed twice")
        allowed = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
        wrong = [metric for metric in spec["metrics"] if metric not in allowed]
        if wrong:
            kind = "a regression" if regression else "a classification"
            raise ParamsError(f"{where}.metrics: {wrong[0]!r} is not a metric for {kind} task "
                              f"(allowed: {', '.join(allowed)})")


def _check_glue(params: dict[str, Any], schema: dict) -> None:
    """Each fanned-out task's merged params must pass the schema too (a typo in an override names its key)."""
    from kdnas.data.tasks import TASKS
    from kdnas.task_params import glue_tasks, task_params

    for task in glue_tasks(params):
        if task not in TASKS and task not in (params.get("custom_tasks") or {}):
            raise ParamsError(f"params: glue.tasks.{task}: not a GLUE task ({', '.join(TASKS)}) nor one of "
                              f"custom_tasks ({', '.join(params.get('custom_tasks') or {}) or 'none defined'})")
        if task == params["task"]:
            raise ParamsError(f"params: glue.tasks.{task} repeats the search task (task = {task!r}), which "
                              "the GLUE table always includes; remove it from glue.tasks")
        for folder in ("glue_dir", "custom_dir"):
            if folder in ((params["glue"]["tasks"][task] or {}).get("data") or {}):
                raise ParamsError(f"params: glue.tasks.{task}.data.{folder}: every task reads data.{folder} (the "
                                  "pipeline's data dependency); set it there")
        if "fusion" in ((params["glue"]["tasks"][task] or {}).get("export") or {}):
            raise ParamsError(f"params: glue.tasks.{task}.export.fusion: the latency stage times one graph form "
                              "for every task; set export.fusion")
        merged = task_params(params, task)
        merged["glue"] = {"tasks": {}}
        error = _first_error(Validator(schema), merged)
        if error:
            raise ParamsError(f"params: glue.tasks.{task} gives {_one_line(error)}")


def teacher_config(backbone: str) -> dict | None:
    """The backbone's config.json as a dict when it can be read without loading the model (a local folder,
    an installed ``package:``, a hub id already cached); None otherwise (checked when the teacher loads)."""
    from kdnas.models.backbone import backbone_config_path

    path = backbone_config_path(backbone)
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ParamsError(f"teacher.backbone = {backbone!r}: cannot read {path}: {error}") from None


def _check_teachers_used_as_given(params: dict[str, Any]) -> None:
    """A teacher used as given (``teacher.finetune: false``) must have a head that fits its task: the search
    task's and each fanned-out task's (which may name its own teacher in ``glue.tasks.<task>.teacher``)."""
    from kdnas.data.tasks import task_of
    from kdnas.models.teacher_head import head_order
    from kdnas.task_params import task_runs

    for task, run in task_runs(params).items():
        if run["teacher"].get("finetune", True):
            continue
        where = "teacher" if task == params["task"] else f"glue.tasks.{task}: teacher"
        config = teacher_config(run["teacher"]["backbone"])
        if config is not None:  # an uncached hub id: checked when the teacher loads
            try:
                head_order(config, task_of(run), f"{where}.backbone = {run['teacher']['backbone']!r} "
                                                    "(teacher.finetune: false)")
            except KdnasError as error:
                raise ParamsError(f"params: {error}") from None


def _check_search_teachers_share_a_shape(params: dict[str, Any]) -> None:
    """``search.tasks: all`` builds each candidate from every task's teacher: they must have one shape."""
    from kdnas.task_params import search_tasks, task_params

    shape_keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
    tasks = search_tasks(params)
    main = teacher_config(params["teacher"]["backbone"])
    for task in tasks[1:]:
        backbone = task_params(params, task)["teacher"]["backbone"]
        other = teacher_config(backbone) if backbone != params["teacher"]["backbone"] else main
        if main and other and [main.get(k) for k in shape_keys] != [other.get(k) for k in shape_keys]:
            raise ParamsError(f"params: glue.tasks.{task}.teacher.backbone = {backbone!r} has another shape than the "
                              f"search task's teacher ({params['teacher']['backbone']!r}), but search.tasks = all "
                              "builds every candidate from each task's teacher; use one backbone shape or "
                              "search.tasks: search")


def _check_space_fits_teacher(params: dict[str, Any]) -> None:
    """Inherited students slice the teacher: no dimension of the space may exceed the teacher's."""
    if params["space"]["init"] != "inherit":
        return
    config = teacher_config(params["teacher"]["backbone"])
    if not config:
        return
    if config.get("model_type", "bert") != "bert":
        raise ParamsError(f"params: teacher.backbone = {params['teacher']['backbone']!r} is a {config['model_type']!r} "
                          "model; students are BERT models built from a BERT-family teacher (model_type 'bert')")
    too_sparse = [n for n in params["baselines"]["keep_every"] if n > config.get("num_hidden_layers", n)]
    if too_sparse:
        raise ParamsError(f"params: baselines.keep_every = {params['baselines']['keep_every']}: {too_sparse[0]} is more "
                          f"than the teacher's {config['num_hidden_layers']} layers ({params['teacher']['backbone']})")
    limits = {"layers": config.get("num_hidden_layers"), "hidden": config.get("hidden_size"),
              "heads": config.get("num_attention_heads"), "ffn": config.get("intermediate_size")}
    for dim, limit in limits.items():
        too_big = [v for v in params["space"][dim] if limit is not None and v > limit]
        if too_big:
            raise ParamsError(f"params: space.{dim} = {params['space'][dim]} goes beyond the teacher's {limit} "
                              f"({params['teacher']['backbone']}); space.init: inherit slices the teacher")
    if limits["hidden"] and limits["heads"]:
        _check_profile_fits_space(params, max_head_size=limits["hidden"] // limits["heads"])


def _check_profile_fits_space(params: dict[str, Any], max_head_size: int) -> None:
    """latency_profile holds some sampled architectures out and fits on the rest: it needs one of each."""
    from kdnas.errors import KdnasError
    from kdnas.search.space import SearchSpace

    try:
        size = len(SearchSpace.from_params(params["space"], max_head_size=max_head_size))
    except KdnasError as error:
        raise ParamsError(f"{error} (inheriting students' heads are at most the teacher's {max_head_size} "
                          "wide)") from None
    profile = params["latency_profile"]
    count = min(profile["samples"], size)
    held = max(1, int(round(profile["held_out"] * count)))
    if count - held < 1:
        raise ParamsError(f"params: latency_profile would time {count} architecture(s) (the space holds {size} "
                          f"valid ones) and hold {held} out, leaving none to fit the predictor; widen space or "
                          "raise latency_profile.samples")


def load_params(path: str | Path) -> dict[str, Any]:
    """Reads and validates a params file; raises ParamsError with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    params = read_yaml(path)
    if not isinstance(params, dict):
        raise ParamsError(f"params file {path} must hold a mapping, got {type(params).__name__}")
    return validate_params(params)
