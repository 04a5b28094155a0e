"""The one description of every stage: its command-line paths (inputs, outputs and plain values, in command
order), the params it reads, whether it reads the task's data, and whether it runs once per GLUE task.

Both engines follow from it:
- ``dvc.yaml`` is generated from it (``python -m kdnas.pipeline.dvc_yaml``; a test holds the committed file
  equal to the generated one). Each stage's code deps are the ``kdnas`` modules its CLI imports, found by
  reading the imports (:mod:`kdnas.pipeline.code_deps`), so they cannot drift from the code;
- the Snakemake rules read each stage's params and code from here (``workflow/rules/common.smk``).

Paths keep DVC's templates: ``${task}`` is the search task, ``${key}`` the task of a per-task stage (Snakemake:
the ``{task}`` wildcard). To add a stage: declare it here, write ``stages/<name>.py`` and its
``kdnas/pipeline/<name>.py``, add its Snakemake rule, and regenerate ``dvc.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass

TEACHER = "results/teacher/model"
TRANSFER = "results/transfer/logits.parquet"
SEARCH_PROXY = "results/proxies/${task}"
RANKED = "results/search/ranked.json"
RANKING = "results/distill_topk/ranking.json"
LATENCY = "results/latency/latency.csv"
STUDENT = "results/student/model"
STUDENT_SUMMARY = "results/student/summary.json"
SEARCH_METRICS = "metrics/evaluate.json"
TASK = "results/glue/${key}"  # a per-task stage's folder
PARAMS = "params.yaml"
TASK_PARAMS = "results/glue_params/${key}.yaml"  # a task's resolved params, which its stages track: outside
# results/glue, which export reads as a whole


@dataclass(frozen=True)
class Arg:
    """``--flag value`` on the stage's command line: neither a dep nor an output (a task name, a folder the
    stage reads parts of that DVC cannot list)."""
    flag: str
    path: str
    help: str = ""


@dataclass(frozen=True)
class In(Arg):
    """An input path: a DVC dep, a Snakemake input."""
    note: str = ""  # a comment beside the dep in dvc.yaml


@dataclass(frozen=True)
class Out(Arg):
    """An output cached by DVC (``persist``: kept while the stage reruns, e.g. a resumable log); ``flag`` None
    for a file the stage writes beside another (the search's trial state)."""
    persist: bool = False


@dataclass(frozen=True)
class Metric(Out):
    """A DVC metrics file (in git, not cached)."""


@dataclass(frozen=True)
class Plot(Out):
    """A DVC plots file, with its plot properties."""
    props: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Mode:
    """A flag outside DVC's command, for another way to run the stage: distill_topk's per-candidate jobs and
    their gather, which the Snakemake rules run. ``input``: its values are paths that must exist."""
    flag: str
    help: str
    nargs: str | None = None
    input: bool = False


def attribute(flag: str) -> str:
    """A flag's name on the stage's paths object (``latency-predictor``: ``latency_predictor``)."""
    return flag.replace("-", "_")


_PATHS_TYPES: dict[str, type] = {}
# read by stages but tracked by none: where resumable state goes and how often (a resumed run gives the same bytes)
UNTRACKED_PARAMS = ("checkpoint",)


@dataclass(frozen=True)
class Stage:
    name: str
    args: tuple[Arg, ...]
    params: tuple[str, ...]
    reads_data: bool = False  # the task's data files: DVC tracks the data folders, a rule the task's files
    per_task: bool = False    # one run per task of glue.tasks; tracks its keys in the task's resolved params
    resolves_task_params: bool = False  # glue_params: writes that file, reading params.yaml's own keys
    note: str = ""            # a comment above the stage in dvc.yaml
    param_notes: dict = field(default_factory=dict)  # a comment beside a params key (or "" for the block)
    modes: tuple[Mode, ...] = ()  # flags for other ways to run it, outside DVC's command

    @property
    def flags(self) -> list[str]:
        """Every flag of the stage's command line, in order (the manifest's args, then its modes' flags)."""
        return [a.flag for a in self.args if a.flag is not None] + [m.flag for m in self.modes]

    @property
    def paths_type(self) -> type:
        """What the stage's function gets: a frozen dataclass with one field per flag (None when not given), so
        it reads only what the stage declares (``TeacherPaths(model=..., metrics=...)``)."""
        if self.name not in _PATHS_TYPES:
            name = "".join(part.title() for part in self.name.split("_")) + "Paths"
            fields = [(attribute(flag), "str | list[str] | None", field(default=None)) for flag in self.flags]
            paths_type = make_dataclass(name, fields, frozen=True)
            paths_type.__module__ = __name__
            _PATHS_TYPES[self.name] = paths_type
        return _PATHS_TYPES[self.name]

    def paths(self, values) -> object:
        """The stage's paths object from parsed arguments (an argparse Namespace): its declared flags only."""
        return self.paths_type(**{attribute(flag): getattr(values, attribute(flag), None) for flag in self.flags})

    @property
    def function(self) -> str:
        """What runs it: ``<name>_stage(args, params)`` in ``kdnas/pipeline/<name>.py``, imported after the checks."""
        return f"kdnas.pipeline.{self.name}:{self.name}_stage"

    @property
    def inputs(self) -> list[In]:
        return [a for a in self.args if isinstance(a, In)]

    @property
    def outputs(self) -> list[Out]:
        return [a for a in self.args if isinstance(a, Out)]

    @property
    def params_file(self) -> str:
        """Where DVC reads the keys the stage tracks: a per-task stage's own task's resolved params (written by
        glue_params), since a task's ``glue.tasks`` entry sets only the keys it overrides and DVC can track only
        keys that exist; every other stage's in params.yaml."""
        return TASK_PARAMS if self.per_task and not self.resolves_task_params else PARAMS

    def readable_params(self, task: str | None = None) -> list[str]:
        """The params keys the stage may read (a block covers its keys): those it tracks, with ``task`` for
        ``${key}``; a per-task stage's task entry (``glue.tasks.<task>``, which it resolves its keys from) and
        its ``task`` (its ``--task``); and the keys no stage tracks because they never change a result."""
        keys = [key.replace("${key}", task or "") for key in self.params] + list(UNTRACKED_PARAMS)
        return keys + ([f"glue.tasks.{task}", "task"] if self.per_task else [])


def _task_arg() -> Arg:
    return Arg("task", "${key}", "a task of glue.tasks")


def _plot(flag, path, help, **props) -> Plot:
    return Plot(flag, path, help, props=tuple(props.items()))


PROXY_PARAMS = ("data.glue_dir", "data.custom_dir", "data.max_length", "proxy", "space.importance", "search.losses",
                "distill_topk.losses")
DISTILL_PARAMS = ("data.max_length", "space.init")  # what building and distilling a student reads besides its block
BASELINE_FAMILY = ("baselines.keep_every", "baselines.ffn_fraction")  # which hand-crafted students (not how many
# train at once, which changes only the baselines stages' float rounding)

_STAGES: tuple[Stage, ...] = (
    Stage("teacher", reads_data=True,
          args=(Out("model", TEACHER, "fine-tuned teacher (HF folder)"),
                Metric("metrics", "metrics/teacher.json", "dev metrics (JSON)")),
          params=("compute", "seed", "task", "custom_tasks", "data", "teacher")),
    Stage("transfer", reads_data=True,
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                Out("out", TRANSFER, "transfer rows with teacher logits (parquet)")),
          params=("compute", "seed", "task", "custom_tasks", "data", "transfer")),
    Stage("proxy", reads_data=True,
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                Out("out", SEARCH_PROXY, "folder with train.parquet, dev.parquet, states.json (and "
                                         "train.states.safetensors, importance.safetensors when needed)")),
          params=("compute", "seed", "task", "custom_tasks", *PROXY_PARAMS)),
    Stage("glue_teacher", reads_data=True, per_task=True,
          note="The GLUE fan-out's teachers and proxy sets come first: with search.tasks: all the search scores every\n"
               "candidate on each task of glue.tasks, relative to that task's teacher.",
          args=(_task_arg(), Out("model", f"{TASK}/teacher/model", "fine-tuned teacher (HF folder)"),
                Metric("metrics", "metrics/glue/${key}/teacher.json", "dev metrics (JSON)")),
          params=("compute", "seed", "custom_tasks", "data", "teacher")),
    Stage("glue_proxy", reads_data=True, per_task=True,
          note="The task's proxy sets, for the multi-task search (search.tasks: all).",
          args=(_task_arg(), In("teacher", f"{TASK}/teacher/model", "the task's fine-tuned teacher (HF folder)"),
                Out("out", "results/proxies/${key}", "the task's proxy folder (as the proxy stage writes it)")),
          params=("compute", "seed", "custom_tasks", *PROXY_PARAMS)),
    Stage("latency_profile",
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder; gives the model family)"),
                Out("predictor", "results/latency_profile/predictor.json", "fitted predictor with its measurements (JSON)"),
                Metric("metrics", "metrics/latency_profile.json", "held-out Spearman and MAPE (JSON)")),
          params=("seed", "space.layers", "space.hidden", "space.heads", "space.ffn", "space.init", "latency_profile",
                  "search.latency", "latency.seq_len", "latency.threads", "export.fusion"),
          param_notes={"": "space.importance aside: timing does not depend on which weights are kept",
                       "export.fusion": "an ONNX Runtime search.latency.backend times the graph form export ships"}),
    Stage("search",
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                In("proxies", "results/proxies", "the folder of every task's proxy folder (<task>/, from the proxy "
                                                 "and glue_proxy stages)",
                   note="every task's proxy folder (proxy, glue_proxy@<task>); each records the fingerprint of the "
                        "teacher its\nlogits came from, which the search checks against the teacher it loads from "
                        "results/glue/<task>"),
                Arg("glue", "results/glue", "the GLUE fan-out's folder, an input when search.tasks is all: its "
                                            "tasks' teachers (<task>/teacher/model)"),
                In("latency-predictor", "results/latency_profile/predictor.json",
                   "latency predictor from latency_profile (used when search.latency.mode is predicted)"),
                Out("trials", "results/search/trials.jsonl", "trial log (JSONL, resumable)", persist=True),
                Out(None, "results/search/trials.state.json", persist=True),  # the log's resumable state
                _plot("trials-csv", "results/search/trials.csv", "trial table for plots (CSV)", x="latency_ms",
                      y="score", template="scatter", title="Search trials (proxy-dev score vs latency)"),
                Out("ranked", RANKED, "every trial, best reward first (JSON)"),
                Out("pareto", "results/search/pareto.csv", "non-dominated trials, score vs latency (CSV)"),
                _plot("hypervolume", "results/search/hypervolume.csv", "hypervolume and best reward after each trial "
                      "(CSV)", x="trial", y="hypervolume", title="Hypervolume after each trial"),
                Metric("metrics", "metrics/search.json", "search summary metrics (JSON)")),
          params=("compute", "seed", "task", "custom_tasks", "data.max_length", "teacher", "proxy", "space", "search",
                  "latency.seq_len", "latency.threads", *BASELINE_FAMILY, "glue.tasks"),
          param_notes={"teacher": "the trial log's resume fingerprint (trials of another teacher never resume)",
                       "proxy": "the same, for the proxy sets",
                       "baselines.keep_every": "search.prescreen.max_speedup: hand_crafted reads the family",
                       "glue.tasks": "which tasks search.tasks: all scores; an override unrelated to the search "
                                     "resumes its log"}),
    Stage("distill_topk",
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                In("proxies", "results/proxies", "the folder of every task's proxy folder (<task>/)"),
                Arg("glue", "results/glue", "the GLUE fan-out's folder, an input when search.tasks is all: its "
                                            "tasks' teachers (<task>/teacher/model)"),
                In("ranked", RANKED, "the search's trials ranked by reward (JSON)"),
                Out("ranking", RANKING, "ranked candidates (JSON)")),
          params=("compute", "seed", "task", "custom_tasks", "data.max_length", "space.init", "space.importance",
                  "search.tasks", "search.reward", "distill_topk", "glue.tasks"),
          # under Snakemake: one job per candidate, then one that ranks their results
          modes=(Mode("arch", "distil only this candidate (an architecture key) ..."),
                 Mode("candidate", "... and write its result here (JSON)"),
                 Mode("gather", "per-candidate results to rank into --ranking", nargs="+", input=True))),
    Stage("latency",
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                In("ranking", RANKING, "ranked candidates (JSON)"),
                Out("table", LATENCY, "one row per model and batch size (CSV)"),
                Metric("metrics", "metrics/latency.json", "speed-ups and hardware (JSON)")),
          params=("space.init", "latency", *BASELINE_FAMILY, "export.fusion"),
          param_notes={"baselines.keep_every": "the hand-crafted students are timed in the same run",
                       "export.fusion": "ONNX Runtime times the graph form export ships"}),
    Stage("distill_full",
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                In("transfer", TRANSFER, "transfer set with teacher logits (parquet)"),
                In("proxy", SEARCH_PROXY, "proxy folder (importance scores when space.importance is gradient)"),
                In("ranking", RANKING, "ranked candidates (JSON)"),
                In("latency", LATENCY, "latency table (CSV)"),
                Out("model", STUDENT, "distilled student (HF folder)"),
                Out("summary", STUDENT_SUMMARY, "winner and training history (JSON)")),
          params=("compute", "seed", "task", "custom_tasks", *DISTILL_PARAMS, "space.importance", "search.reward",
                  "search.latency.batch_size", "search.latency.mode", "search.latency.backend", "distill_full")),
    Stage("baselines",
          note="The students a practitioner would pick by hand, distilled exactly as the winner is, for evaluate's\n"
               "comparison at equal latency.",
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                In("transfer", TRANSFER, "transfer set with teacher logits (parquet)"),
                In("proxy", SEARCH_PROXY, "proxy folder (importance scores when space.importance is gradient)"),
                Out("models", "results/baselines/models", "one HF folder per hand-crafted student, named by "
                                                          "architecture"),
                Out("summary", "results/baselines/summary.json", "layers kept, parameters and training history "
                                                                 "(JSON)")),
          params=("compute", "seed", "task", "custom_tasks", *DISTILL_PARAMS, "space.importance", "distill_full",
                  "baselines", "latency.threads")),
    Stage("evaluate", reads_data=True,
          args=(In("teacher", TEACHER, "fine-tuned teacher (HF folder)"),
                In("student", STUDENT, "distilled student (HF folder)"),
                In("baselines", "results/baselines/models", "the hand-crafted students (a folder of HF folders)"),
                In("summary", STUDENT_SUMMARY, "distill_full summary (JSON)"),
                In("latency", LATENCY, "latency table (CSV)"),
                Metric("metrics", SEARCH_METRICS, "metrics (JSON)"),
                Out("predictions", "results/evaluate/predictions.csv", "dev predictions of teacher, student and "
                                                                       "hand-crafted students (CSV)"),
                _plot("comparison", "plots/comparison.csv", "teacher vs student table for plots (CSV)", x="model",
                      y="value", template="bar_horizontal", title="Teacher vs student (dev)")),
          params=("compute", "seed", "task", "custom_tasks", "data", "evaluate")),
    Stage("glue_transfer", reads_data=True, per_task=True,
          note="GLUE fan-out: every task of glue.tasks gets its own teacher (above), cached logits and the searched\n"
               "student; `glue` gathers them with the search task into the GLUE table and the report. Each task's "
               "stages\ntrack their keys in its resolved params (glue_params), so adding a task adds its stages and "
               "reruns the search\n(which scores every task under search.tasks: all), what follows it and the gather "
               "stages, no other task's teacher.",
          args=(_task_arg(), In("teacher", f"{TASK}/teacher/model", "the task's fine-tuned teacher (HF folder)"),
                Out("out", f"{TASK}/transfer/logits.parquet", "transfer rows with teacher logits (parquet)")),
          params=("compute", "seed", "custom_tasks", "data", "transfer")),
    Stage("glue_distill", per_task=True,
          args=(_task_arg(), In("teacher", f"{TASK}/teacher/model", "the task's fine-tuned teacher (HF folder)"),
                In("transfer", f"{TASK}/transfer/logits.parquet", "the task's transfer set with teacher logits "
                                                                  "(parquet)"),
                In("ranking", RANKING, "ranked candidates of the search (JSON)"),
                In("latency", LATENCY, "latency table (CSV)"),
                In("searched", STUDENT_SUMMARY, "the search task's student summary (JSON)"),
                Out("model", f"{TASK}/student/model", "distilled student (HF folder)"),
                Out("summary", f"{TASK}/student/summary.json", "winner and training history (JSON)")),
          params=("compute", "seed", "custom_tasks", *DISTILL_PARAMS, "search.reward", "search.latency.batch_size",
                  "search.latency.mode", "search.latency.backend", "distill_full")),
    Stage("glue_baselines", per_task=True,
          args=(_task_arg(), In("teacher", f"{TASK}/teacher/model", "the task's fine-tuned teacher (HF folder)"),
                In("transfer", f"{TASK}/transfer/logits.parquet", "the task's transfer set with teacher logits "
                                                                  "(parquet)"),
                Out("models", f"{TASK}/baselines/models", "one HF folder per hand-crafted student, named by "
                                                          "architecture"),
                Out("summary", f"{TASK}/baselines/summary.json", "layers kept, parameters and training history "
                                                                 "(JSON)")),
          params=("compute", "seed", "custom_tasks", *DISTILL_PARAMS, "distill_full", "baselines",
                  "latency.threads")),
    Stage("glue_evaluate", reads_data=True, per_task=True,
          args=(_task_arg(), In("teacher", f"{TASK}/teacher/model", "the task's teacher (HF folder)"),
                In("student", f"{TASK}/student/model", "the task's student (HF folder)"),
                In("baselines", f"{TASK}/baselines/models", "the task's hand-crafted students (a folder of HF "
                                                            "folders)"),
                In("summary", f"{TASK}/student/summary.json", "the task's student summary (JSON)"),
                In("latency", LATENCY, "latency table (CSV)"),
                Metric("metrics", "metrics/glue/${key}/evaluate.json", "teacher and student dev metrics (JSON)"),
                Out("predictions", f"{TASK}/predictions.csv", "dev predictions of teacher, student and hand-crafted "
                                                              "students (CSV)")),
          params=("compute", "seed", "custom_tasks", "data", "evaluate")),
    Stage("export", reads_data=True,
          args=(In("student", STUDENT, "the search task's student (HF folder)"),
                In("summary", STUDENT_SUMMARY, "the search task's student summary (JSON)"),
                In("search-metrics", SEARCH_METRICS, "the search task's evaluate metrics (JSON)"),
                In("teacher-metrics", "metrics/teacher.json", "the search task's teacher metrics (JSON)"),
                In("glue-results", "results/glue", "folder of <task>/student/{model,summary.json}"),
                In("glue-metrics", "metrics/glue", "folder of <task>/{evaluate,teacher}.json"),
                In("latency", LATENCY, "latency table (CSV)"),
                Out("out", "export", "folder of <task>/ exports"),
                Metric("metrics", "metrics/export.json", "ONNX parity and the ONNX students' dev scores per task (JSON)")),
          params=("compute", "seed", "task", "custom_tasks", "data", "teacher", "transfer", "space", "latency.threads",
                  "export", "distill_full", "glue")),
    Stage("glue",
          args=(In("search-metrics", SEARCH_METRICS, "the search task's evaluate metrics (JSON)"),
                In("glue-metrics", "metrics/glue", "folder of <task>/evaluate.json for glue.tasks"),
                In("summary", STUDENT_SUMMARY, "the search task's student summary (JSON)"),
                In("latency", LATENCY, "latency table (CSV)"),
                In("trials", "results/search/trials.csv", "search trial table (CSV)"),
                In("export-metrics", "metrics/export.json", "export's dev scores of the fp32 and int8 ONNX students "
                                                            "(JSON)"),
                Metric("metrics", "metrics/glue.json", "the GLUE table (JSON)"),
                _plot("plot", "plots/glue.csv", "task scores of teacher and student (CSV)", x="task", y="score",
                      template="bar_horizontal", title="GLUE task scores, teacher vs student (dev)"),
                Out("report", "report", "report folder (README.md + PNGs)")),
          params=("seed", "task", "custom_tasks", "data", "teacher", "transfer", "proxy", "space", "latency_profile",
                  "search", "distill_topk", "latency", "distill_full", "evaluate", "baselines", "glue"),
          param_notes={"": "the report prints every param"}),
)

# What the per-task stages track, each in its task's resolved params: glue_params writes these keys (the search
# run's values with the task's glue.tasks overrides laid over them) and tracks them, and its task's entry, in
# params.yaml. It runs first of a task's stages, in seconds, after any change to them; a stage whose own keys
# kept their values is skipped.
_PER_TASK_KEYS = dict.fromkeys(key for s in _STAGES if s.per_task for key in s.params)
TASK_PARAMS_KEYS: tuple[str, ...] = tuple(key for key in _PER_TASK_KEYS  # data.max_length is in data
                                          if not any(key.startswith(block + ".") for block in _PER_TASK_KEYS))
GLUE_PARAMS = Stage(
    "glue_params", per_task=True, resolves_task_params=True,
    note="A task's resolved params: the keys its stages read, its glue.tasks overrides laid over the search run's\n"
         "blocks. Each per-task stage tracks its own keys in this file (a task's entry holds only the keys it\n"
         "overrides, and DVC tracks only keys that exist), so a change to the entry reruns only the stages it concerns.",
    args=(_task_arg(), Out("out", TASK_PARAMS, "the task's resolved params (YAML)")),
    params=(*TASK_PARAMS_KEYS, "glue.tasks.${key}"))
_FIRST_PER_TASK = next(i for i, s in enumerate(_STAGES) if s.per_task)
STAGES: tuple[Stage, ...] = (*_STAGES[:_FIRST_PER_TASK], GLUE_PARAMS, *_STAGES[_FIRST_PER_TASK:])

MANIFEST: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def stage(name: str) -> Stage:
    return MANIFEST[name]
