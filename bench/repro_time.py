"""How long does `dvc repro` take, stage by stage? (#13)

Runs `dvc repro` (any arguments are passed on), echoes its output, notes the time at which DVC starts each
stage, and writes ``bench/out/repro_time.csv``: one row per stage that ran (``stage``, ``started`` in UTC,
``seconds`` until the next stage started or the run ended) and a last row, ``total``. A stage DVC skips
(unchanged) takes no row. For the from-scratch figure, run it where nothing is cached (no ``results/``, no
``.dvc/cache``: a fresh clone after ./install.sh), with nothing else on the cores:

    .venv/bin/python bench/repro_time.py                          # the default pipeline
    .venv/bin/python bench/repro_time.py --out bench/out/repro_time_gpu.csv -- --force
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

STAGE_STARTS = re.compile(r"^Running stage '(?P<stage>[^']+)':")


def timed_repro(dvc_args: list[str]) -> tuple[float, list[tuple[str, float]], float, int]:
    """(launch time, [(stage, start time)], end time, dvc's exit status) of one `dvc repro`."""
    dvc = Path(sys.executable).with_name("dvc")
    starts, launched = [], time.time()
    with subprocess.Popen([str(dvc), "repro", *dvc_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            match = STAGE_STARTS.match(line)
            if match:
                starts.append((match["stage"], time.time()))
    return launched, starts, time.time(), proc.returncode


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage_table(launched: float, starts: list[tuple[str, float]], end: float) -> pd.DataFrame:
    """One row per stage, its seconds running until the next one starts, then the total from launch."""
    ends = [t for _, t in starts[1:]] + [end]
    rows = [{"stage": stage, "started": utc(t), "seconds": round(stop - t, 1)} for (stage, t), stop in zip(starts, ends)]
    rows.append({"stage": "total", "started": utc(launched), "seconds": round(end - launched, 1)})
    return pd.DataFrame(rows, columns=["stage", "started", "seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/out/repro_time.csv")
    parser.add_argument("dvc_args", nargs="*", help="passed to dvc repro (after --)")
    args = parser.parse_args()
    launched, starts, end, status = timed_repro(args.dvc_args)
    table = stage_table(launched, starts, end)
    table.to_csv(args.out, index=False)
    print(table.to_markdown(index=False))
    sys.exit(status)


if __name__ == "__main__":
    main()
