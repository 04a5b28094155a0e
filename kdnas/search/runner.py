"""The search loop: ask the strategy, distil and time each candidate, tell the reward, log every trial.

The trial log (JSONL, one trial per line) and the strategy state are rewritten after every trial, so a
stopped search resumes without redoing completed trials. A log written under different search
params is moved aside, never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterable

from kdnas.device import CPU, resolve_compute
from kdnas.distillation.students import build_student
from kdnas.errors import KdnasError
from kdnas.evaluation.baselines import hand_crafted_archs
from kdnas.io import read_json, write_json, write_text
from kdnas.latency.measure import measure_interleaved
from kdnas.latency.predictor import LatencyPredictor, analytic_ms
from kdnas.models.arch import Arch, with_layer_pattern
from kdnas.params_keys import value_at
from kdnas.search.reward import objective
from kdnas.search.space import SearchSpace
from kdnas.search.strategies import build_strategy
from kdnas.task_params import is_multi_task, search_tasks

log = logging.getLogger(__name__)


def _device_kind_off_cpu(compute) -> str | None:
    return None if compute == CPU else compute.kind


# How a key the search declares enters its resume fingerprint when not as it stands (None: left out)
RESUME_FORMS: dict[str, Callable[[dict], object]] = {
    # trials distilled on another device type or in another precision are not mixed into this search (the CPU in
    # fp32, where every log before the compute block was made, adds nothing: those logs still resume)
    "compute": lambda params: _device_kind_off_cpu(resolve_compute(params)),
    # the hand-crafted family matters only when it sets the prescreen band or the first round
    "baselines.keep_every": lambda params: _family_if_used(params, "keep_every"),
    "baselines.ffn_fraction": lambda params: _family_if_used(params, "ffn_fraction"),
    # which tasks a multi-task search scores (their rows and teachers are in the proxy sets hashed); an edit to a
    # task the search does not score resumes the log
    "glue.tasks": lambda params: search_tasks(params) if is_multi_task(params) else None,
}
def _family_if_used(params: dict, key: str):
    uses = ((params["search"].get("prescreen") or {}).get("max_speedup") == HAND_CRAFTED
            or params["search"].get("start_from_hand_crafted"))
    return params["baselines"][key] if uses else None


PROXY_FILES = ("train.parquet", "dev.parquet", "states.json")  # a proxy set's rows, and the teacher they came from


def search_fingerprint(params: dict, declared: Iterable[str], proxy_dirs: Iterable[str | Path]) -> str:
    """Hash of everything that changes trial results; a different hash starts a new log.

    ``declared``: the params keys the search stage declares (:mod:`kdnas.pipeline.manifest`), each hashed as it
    stands unless :data:`RESUME_FORMS` says otherwise, so a key declared later enters the fingerprint too.
    ``proxy_dirs``: the proxy sets the search scores on (their files' contents: rows, teacher logits and the
    teacher's fingerprint), so trials of other rows or another teacher never resume.
    """
    keys = {}
    for key in declared:
        value = RESUME_FORMS[key](params) if key in RESUME_FORMS else value_at(params, key)
        if value is not None:
            keys[key] = value
    digest = hashlib.sha256(json.dumps(keys, sort_keys=True).encode())
    for folder in proxy_dirs:
        for name in PROXY_FILES:
            path = Path(folder) / name
            if path.exists():
                digest.update(name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _latency(model, lat: dict) -> float:
    return measure_interleaved({"m": model}, batch_size=lat["batch_size"], seq_len=lat["seq_len"],
                               threads=lat["threads"], warmup=lat["warmup"], repeats=lat["repeats"])["m"]["median_ms"]


class TrialLog:
    """Append-only JSONL trials plus a JSON state file beside it."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.state_path = Path(path), Path(path).with_suffix(".state.json")
        self.fingerprint = fingerprint

    def load(self) -> tuple[list[dict], dict | None]:
        """Trials and state of a resumable run; moves a log of other params aside."""
        if not self.state_path.exists() or not self.path.exists():
            self._set_aside()
            return [], None
        state = read_json(self.state_path)
        if state.get("fingerprint") != self.fingerprint:
            self._set_aside()
            return [], None
        # The state is saved after each trial's line, so lines past its count (a line whose state save was
        # killed, or a line torn by a SIGKILL mid-write) are dropped: that trial is redone.
        lines = self.path.read_text().split("\n")
        count = state["num_trials"]
        if len(lines) <= count or any(not line.strip() for line in lines[:count]):
            raise KdnasError(f"{self.path} holds fewer trials than {self.state_path} records ({count}); "
                             "delete both to start the search again")
        trials = []
        for number, line in enumerate(lines[:count], start=1):
            try:
                trials.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise KdnasError(f"{self.path}:{number}: not a JSON trial ({error.msg}); delete it and "
                                 f"{self.state_path.name} to start the search again") from None
        if len(lines) > count + 1 or lines[count]:
            log.info("trial log: dropping %d line(s) written after the last saved state",
                     len([l for l in lines[count:] if l]))
            write_text(self.path, "".join(line + "\n" for line in lines[:count]))
        return trials, state

    def _set_aside(self) -> None:
        for path in (self.path, self.state_path):
            if path.exists():
                stamp = time.strftime("%Y%m%d-%H%M%S")
                path.rename(path.with_name(f"{path.stem}.{stamp}{path.suffix}.old"))

    def append(self, trial: dict, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(trial) + "\n")
            handle.flush()
        write_json(self.state_path, {**state, "fingerprint": self.fingerprint})


HAND_CRAFTED = "hand_crafted"  # search.prescreen.max_speedup: the fastest hand-crafted student's speed-up


def prescreen_bounds(params: dict, teacher_config, speedup_of: Callable[[Arch], float]) -> dict | None:
    """``search.prescreen`` with ``max_speedup: hand_crafted`` resolved to the estimated speed-up of the fastest
    student of the ``baselines`` family: the search then covers the family's whole range, and nothing faster,
    where a student could only be compared with the family's fastest member (flagged ``faster``)."""
    bounds = params["search"].get("prescreen")
    if not bounds or bounds.get("max_speedup") != HAND_CRAFTED:
        return bounds
    family = hand_crafted_archs(teacher_config, params["baselines"])
    if not family:
        raise KdnasError("search.prescreen.max_speedup = hand_crafted but baselines.keep_every is empty: there is "
                         "no hand-crafted student to take the bound from; give a number or null")
    fastest = max(family, key=speedup_of)
    log.info("prescreen: max_speedup %.2fx, the estimate for %s, the fastest hand-crafted student",
             speedup_of(fastest), fastest.key)
    return {**bounds, "max_speedup": speedup_of(fastest)}


def prescreen(space: SearchSpace, bounds: dict | None, speedup_of: Callable[[Arch], float]) -> SearchSpace:
    """Keeps the architectures whose estimated speed-up, ``speedup_of(arch)``, lies in ``[min_speedup, max_speedup]``.

    Distilling a candidate is the search's whole cost, and latency is known before it: a student slower than
    the target loses the hard constraint whatever its accuracy, and one far faster than needed gives away
    capacity (accuracy grows with size), so neither is worth a trial. A bound of None is open.
    """
    if not bounds or (bounds.get("min_speedup") is None and bounds.get("max_speedup") is None):
        return space
    low, high = bounds.get("min_speedup") or 0.0, bounds.get("max_speedup") or float("inf")
    speedups = {a: speedup_of(a) for a in space.archs}
    kept = space.restrict(lambda a: low <= speedups[a] <= high)
    if not kept.archs:
        raise KdnasError(f"search.prescreen [{low}, {high}] keeps no architecture: estimated speed-ups in the "
                         f"space run from {min(speedups.values()):.2f}x to {max(speedups.values()):.2f}x")
    log.info("prescreen: %d of %d architectures estimated at %.1f-%.1fx the teacher's speed", len(kept.archs),
             len(space.archs), low, high)
    return kept


def hand_crafted_start(params: dict, teacher_config, space: SearchSpace) -> list[Arch]:
    """The first round under ``search.start_from_hand_crafted``: the hand-crafted students (``baselines``) that
    lie in the prescreened space, then the same shapes with each other layer pattern of the space, within the
    budget. Every strategy then ranks its own proposals against them, so the search's best is never a student
    the proxy scores below a practitioner's pick in the band; without them a 12-candidate search of a
    56-student band could miss the family's best member (bench/int8_search.py). The family's shapes with the
    lever it lacks come next: 12 trials of the default search never tried L2-H384-A12-F384 with teacher layers
    1 and 5, which full distillation scores 28.7 STS-B points above the family's layers 2 and 5
    (bench/layer_choice.py)."""
    if not params["search"].get("start_from_hand_crafted"):
        return []
    inside = set(space.archs)
    family = hand_crafted_archs(teacher_config, params["baselines"])
    start = [with_layer_pattern(arch, pattern, space.teacher_layers) if pattern != "uniform" else arch
             for pattern in dict.fromkeys(["uniform", *space.choices["layer_pattern"]]) for arch in family]
    return [arch for arch in dict.fromkeys(start) if arch in inside][: params["search"]["candidates"]]


def run_search(params: dict, teacher, task, trials_path: Path, evaluator, predictor: dict | None = None, *,
               resume_key: str) -> tuple[list[dict], dict]:
    """Runs (or resumes) the search in rounds of ``search.proposals_per_round`` candidates.

    Each round is asked from the strategy at once, distilled by ``evaluator`` (serial or parallel: the
    same results), then told back one by one, the trial log and state saved after each. A resumed run
    first finishes the round it was in, so it proposes exactly what an uninterrupted run would.

    Latency is measured per candidate, or read from ``predictor`` (the latency_profile stage's JSON) when
    given: free, and the same on every run for one profile; with ``search.latency.mode: analytic`` it is
    the MAC count (:func:`kdnas.latency.predictor.analytic_ms`), the same on every machine and run.

    ``resume_key``: :func:`search_fingerprint` of this run; a log saved under another key is moved aside.

    Returns:
        (trials in evaluation order, the final state: strategy state and the teacher's latency).
    """
    search = params["search"]
    teacher_head = teacher.config.hidden_size // teacher.config.num_attention_heads
    init = params["space"]["init"]
    inherit = init == "inherit"
    space = SearchSpace.from_params(params["space"], max_head_size=teacher_head if inherit else None,
                                    teacher_layers=teacher.config.num_hidden_layers if inherit else None)
    lat = {**search["latency"], "seq_len": params["latency"]["seq_len"], "threads": params["latency"]["threads"]}
    model = None if predictor is None else LatencyPredictor.from_dict(predictor)
    # where latency comes from: the MAC count, the profile's prediction, or a timing per candidate
    source = "analytic" if search["latency"]["mode"] == "analytic" else "measured" if model is None else "predicted"

    def free_latency_ms(arch: Arch) -> float:
        """The profile's prediction, else the MAC count (under ``measured``, the prescreen's stand-in)."""
        return model.predict(arch) if source == "predicted" else analytic_ms(arch, lat["batch_size"], lat["seq_len"])

    t = teacher.config
    teacher_arch = Arch(t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.intermediate_size)
    # estimated speed-ups (prescreen) compare free estimates: the profile's teacher time (measured when the
    # profile was made) or the teacher's own free estimate
    reference_ms = predictor["teacher_latency_ms"] if source == "predicted" else free_latency_ms(teacher_arch)
    full_size = len(space)

    def speedup_of(arch: Arch) -> float:
        return reference_ms / free_latency_ms(arch)

    space = prescreen(space, prescreen_bounds(params, teacher.config, speedup_of), speedup_of)
    start = hand_crafted_start(params, teacher.config, space)
    # the latency model and the first round change the trials too, so a log made with others never resumes
    fingerprint = resume_key + "".join(hashlib.sha256(json.dumps(part).encode()).hexdigest()[:8] for part in
                                       ([predictor["coefficients"]] if predictor else [])
                                       + ([[a.key for a in start]] if start else []))
    trial_log = TrialLog(trials_path, fingerprint)
    trials, state = trial_log.load()
    if state:
        teacher_ms = state["teacher_latency_ms"]
    elif source == "measured":
        teacher_ms = _latency(teacher, lat)
    else:
        teacher_ms = reference_ms
    budget = min(search["candidates"], len(space))
    strategy = build_strategy(search["strategy"], space, seed=params["seed"], **search.get("strategy_kwargs", {}))
    if state:
        strategy.load_state_dict(state["strategy"])
        log.info("resuming search: %d trials done", len(trials))
    started = time.perf_counter() - sum(t["seconds"] for t in trials)
    seen = {t["arch"] for t in trials}
    if state:  # a resumed run first finishes the round it was in
        round_left = [Arch.from_key(k) for k in state.get("round", [])]
    else:
        round_left = list(start)
        if round_left:
            log.info("search starts from the hand-crafted students in the band: %s",
                     ", ".join(a.key for a in round_left))
    while len(trials) < budget:
        if search.get("max_seconds") and time.perf_counter() - started > search["max_seconds"]:
            log.info("search stopped by max_seconds after %d trials", len(trials))
            break
        if not round_left:
            size = min(search.get("proposals_per_round", 1), budget - len(trials))
            round_left = []
            for arch in strategy.ask(size):
                if arch.key not in seen and arch not in round_left:
                    round_left.append(arch)
            if not round_left:
                break
        results = evaluator(round_left)
        for arch, result in zip(list(round_left), results):
            latency_ms = (_latency(build_student(teacher, arch, init=init), lat) if source == "measured"
                          else free_latency_ms(arch))  # the weights do not matter
            value = objective(result["score"], latency_ms, teacher_ms, search["reward"])
            strategy.tell(arch, value)
            round_left.remove(arch)
            trial = {"trial": len(trials), "arch": arch.key, **arch.to_dict(), **result, "latency_ms": latency_ms,
                     "speedup": teacher_ms / latency_ms, "reward": value, "seed": params["seed"],
                     "strategy": search["strategy"]}
            trials.append(trial)
            seen.add(arch.key)
            trial_log.append(trial, {"num_trials": len(trials), "strategy": strategy.state_dict(),
                                     "round": [a.key for a in round_left], "teacher_latency_ms": teacher_ms})
            log.info("trial %d %s score=%.4f latency=%.1fms (%.2fx) reward=%.4f", trial["trial"], arch.key,
                     result["score"], latency_ms, trial["speedup"], value)
    return trials, {"strategy": strategy.state_dict(), "teacher_latency_ms": teacher_ms,
                    "space_size": full_size, "prescreened_size": len(space)}


def top_k(trials: list[dict], k: int) -> list[dict]:
    """The k best trials by reward (ties broken by architecture key for determinism)."""
    if k > len(trials):
        raise KdnasError(f"k = {k} exceeds the {len(trials)} trials the search produced")
    return sorted(trials, key=lambda t: (-t["reward"], t["arch"]))[:k]

