# Shared setup: check params.yaml against workflow/schemas/params.schema.yaml before any job starts,
# with the same one-line errors the stage CLIs give.
import json

from kdnas.params import validate_params


validate_params(config)

PARAMS_FILE = "params.yaml"
LOGS = "logs"


def block(*keys):
    """The params a rule depends on; a change in them (and only them) reruns the rule."""
    out = {}
    for key in keys:
        node = config
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def topk_candidates(wildcards):
    """The per-candidate results to gather: the first k architectures of the search's ranking."""
    with open(checkpoints.search.get().output.ranked) as handle:
        ranked = json.load(handle)
    k = config["distill_topk"]["k"]
    return [f"results/distill_topk/candidates/{trial['arch']}.json" for trial in ranked[:k]]
