"""Loading and checking params.yaml: the JSON Schema first, then the checks a schema cannot express."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kdnas.errors import KdnasError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "params.schema.yaml"


class ParamsError(KdnasError):
    """params.yaml breaks the schema or a cross-field rule."""


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


def validate_params(params: dict[str, Any]) -> dict[str, Any]:
    """Checks params against the schema and cross-field rules; raises ParamsError (one line).

    Returns:
        The same dict, for chaining.
    """
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        # the deepest error names the most specific key; report the first of those
        deepest = max(errors, key=lambda e: len(e.absolute_path))
        raise ParamsError(f"params: {_one_line(deepest)}")
    _check_cross_fields(params)
    return params


def _check_cross_fields(params: dict[str, Any]) -> None:
    # imported here to keep the module import cheap for the Snakefile
    from kdnas.losses.registry import check_loss_specs
    from kdnas.search.space import SearchSpace
    from kdnas.search.registry import check_strategy
    from kdnas.tasks import get_task

    try:
        get_task(params["task"])
    except KdnasError as error:
        raise ParamsError(f"params: task = {params['task']!r} is invalid: {error}") from None
    _check_glue(params)
    search = params["search"]
    k = params["distill_topk"]["k"]
    if k > search["candidates"]:
        raise ParamsError(f"params: distill_topk.k = {k} exceeds search.candidates = "
                          f"{search['candidates']} (top-k must come from evaluated trials)")
    bounds = search.get("prescreen") or {}
    low, high = bounds.get("min_speedup"), bounds.get("max_speedup")
    if low is not None and high is not None and low > high:
        raise ParamsError(f"params: search.prescreen.min_speedup = {low} exceeds max_speedup = {high}")
    try:
        SearchSpace.from_params(params["space"])  # raises when no architecture is valid
        check_strategy(search["strategy"], search.get("strategy_kwargs"))
        for block in ("search", "distill_topk", "distill_full"):
            check_loss_specs(params[block]["losses"], where=f"{block}.losses")
    except ParamsError:
        raise
    except KdnasError as error:
        raise ParamsError(str(error)) from None


def _check_glue(params: dict[str, Any]) -> None:
    """Each fanned-out task's merged params must pass the schema too (a typo in an override names its key)."""
    from kdnas.glue_params import glue_tasks, task_params

    for task in glue_tasks(params):
        if task == params["task"]:
            raise ParamsError(f"params: glue.tasks.{task} repeats the search task (task = {task!r}), which "
                              "the GLUE table always includes; remove it from glue.tasks")
        merged = task_params(params, task)
        merged["glue"] = {"tasks": {}}
        errors = list(jsonschema.Draft202012Validator(load_schema()).iter_errors(merged))
        if errors:
            deepest = max(errors, key=lambda e: len(e.absolute_path))
            raise ParamsError(f"params: glue.tasks.{task} gives {_one_line(deepest)}")


def load_params(path: str | Path) -> dict[str, Any]:
    """Reads and validates a params file; raises ParamsError with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        with open(path) as handle:
            params = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ParamsError(f"params file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"params file {path} must hold a mapping, got {type(params).__name__}")
    return validate_params(params)
