"""Fault injection: SIGKILL the tiny pipeline at random moments, rerun until done, compare with an uninterrupted run.

A reference `dvc repro` runs uninterrupted in one fresh copy (time T). In a second fresh copy, `--kills`
kill points are drawn uniformly over (0, T) and sorted; attempt k runs `dvc repro` in its own process group
and is killed (SIGKILL to the whole group: dvc and the stage it runs) when the attempts' cumulative wall time
reaches kill point k, then the pipeline is rerun once more to completion. Outputs are compared per file.

Writes bench/out/fault_injection.csv (one row per attempt) and bench/out/fault_injection_files.csv (one row
per output file). Usage: python bench/fault_injection.py --kills 20
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from conftest import make_pipeline_copy, tiny_params, tool_env  # noqa: E402

CLOCK = {"seconds", "train_seconds", "search_seconds", "examples_per_second"}  # wall-clock fields
# files that hold latency measurements: they differ between any two runs, interrupted or not
MEASURED = ("results/latency/", "metrics/latency.json", "results/latency_profile/", "metrics/latency_profile.json",
            "metrics/evaluate.json", "plots/comparison.csv", "report/",
            "results/student/summary.json",  # the winner row records its measured latency
            "metrics/glue.json")  # the GLUE table's speed-ups


def attempt(root: Path, log, kill_after: float | None) -> dict:
    """One `dvc repro`, killed (whole process group) after ``kill_after`` seconds unless it ends first."""
    begin = time.monotonic()
    proc = subprocess.Popen(["dvc", "repro"], cwd=root, env=tool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed = False
    try:
        out, _ = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        killed = True
    log.write(out)
    stages = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    return {"seconds": time.monotonic() - begin, "killed": killed, "returncode": proc.returncode,
            "stage": stages[-1] if stages else "", "lock_error": "busy" in out or "Unable to acquire lock" in out,
            "resumed": "resuming" in out, "stale_lock_auto_removed": "Auto removed it from the lock file" in out}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in CLOCK}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def same_without_clock(a: Path, b: Path) -> bool:
    """Equal once wall-clock fields are dropped (JSON, JSONL, CSV); safetensors by tensors."""
    if a.suffix == ".json":
        return _strip(json.loads(a.read_text())) == _strip(json.loads(b.read_text()))
    if a.suffix == ".jsonl":
        return [_strip(json.loads(x)) for x in a.read_text().splitlines()] == \
            [_strip(json.loads(x)) for x in b.read_text().splitlines()]
    if a.suffix == ".csv":
        fa, fb = pd.read_csv(a), pd.read_csv(b)
        drop = [c for c in fa.columns if c in CLOCK]
        return fa.drop(columns=drop).equals(fb.drop(columns=drop, errors="ignore"))
    return False


def outputs(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()
            and p.parts[len(root.parts)] in ("results", "metrics", "plots", "report") and p.name != ".gitignore"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project(where: Path, every_steps: int) -> Path:
    params = tiny_params()
    params["checkpoint"] = {"dir": "checkpoints", "every_steps": every_steps}
    root = make_pipeline_copy(where, params)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=root, env=tool_env(), check=True)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every-steps", type=int, default=2, help="checkpoint interval of the runs")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    parser.add_argument("--reference", help="reuse the reference project of an earlier run (skips that run)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kdnas-fault-"))
    with open(work / "dvc.log", "w") as log:
        if args.reference:  # a finished reference project of an earlier run of this script
            ref_root = Path(args.reference)
            total = float((ref_root / "reference_seconds.txt").read_text())
        else:
            ref_root = project(work / "reference", args.every_steps)
            ref = attempt(ref_root, log, None)
            assert ref["returncode"] == 0, f"reference run failed; see {work / 'dvc.log'}"
            total = ref["seconds"]
            (ref_root / "reference_seconds.txt").write_text(f"{total}\n")
        print(f"reference run: {total:.0f}s", flush=True)
        rng = random.Random(args.seed)
        points = sorted(rng.uniform(0, total) for _ in range(args.kills))
        root = project(work / "faulty", args.every_steps)
        rows, elapsed = [], 0.0

        def record(res, point):
            rows.append({"attempt": len(rows) + 1, "kill_point_s": point, **res})
            print(rows[-1], flush=True)
            return res

        for point in points:
            res = record(attempt(root, log, max(point - elapsed, 0.5)), point)
            elapsed += res["seconds"]
            if not res["killed"] and res["returncode"] == 0:
                break  # finished before this kill point
        for _ in range(3):  # rerun until done, as a user would (a failed rerun is recorded, then retried)
            if rows[-1]["returncode"] == 0 and not rows[-1]["killed"]:
                break
            res = record(attempt(root, log, None), None)
            elapsed += res["seconds"]
    runs = pd.DataFrame(rows)
    kills = int(runs["killed"].sum())
    runs["reference_seconds"] = total
    runs.to_csv(out / "fault_injection.csv", index=False)
    ref_files, files = outputs(ref_root), outputs(root)
    table = []
    for name in sorted(set(ref_files) | set(files)):
        a, b = ref_files.get(name), files.get(name)
        same = a is not None and b is not None and sha(a) == sha(b)
        table.append({"file": name, "present_in_both": a is not None and b is not None, "bytes_identical": same,
                      "identical_without_clock_fields": same or (a is not None and b is not None
                                                                 and same_without_clock(a, b)),
                      "holds_measured_latency": name.startswith(MEASURED)
                      or name.endswith("student/summary.json")})  # every fan-out task's winner row too
    files_table = pd.DataFrame(table)
    files_table.to_csv(out / "fault_injection_files.csv", index=False)
    finished = bool(runs["returncode"].iloc[-1] == 0)
    deterministic = files_table[~files_table["holds_measured_latency"]]
    print(f"kills: {kills}, pipeline finished: {finished}, attempts: {len(runs)}, "
          f"lock errors: {int(runs['lock_error'].sum())}, attempts that resumed a checkpoint: {int(runs['resumed'].sum())}")
    print(f"time: reference {total:.0f}s, with kills {elapsed:.0f}s, lost per kill {(elapsed - total) / max(kills, 1):.1f}s")
    print(f"files: {len(files_table)}; deterministic files identical (bytes): "
          f"{int(deterministic['bytes_identical'].sum())}/{len(deterministic)}, "
          f"(without clock fields): {int(deterministic['identical_without_clock_fields'].sum())}/{len(deterministic)}")
    print(files_table[~files_table["bytes_identical"]].to_string(index=False))
    print(f"logs and projects in {work}")


if __name__ == "__main__":
    main()
