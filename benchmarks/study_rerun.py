"""Benchmark: what the stage cache of `hybridrad run` saves.

Runs one study (default: the shipped demo) three times into the same fresh folder:

1. from scratch;
2. again, unchanged (every stage should be cached);
3. with only the ``model`` section edited (``n_boot`` + 1): only ``evaluation``,
   ``external`` (the scoring of the final model) and ``report`` should be recomputed.

Prints the wall time of each run, the stages each one computed, and the ratios of runs 2
and 3 to run 1 (the obvious alternative to the cache being to rerun everything).

Usage: .venv/bin/python benchmarks/study_rerun.py [--study demo] [--jobs 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hybridrad.study.run import run_study
from hybridrad.study.spec import load_study_file, parse_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="demo", help="study file or shipped name")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: temp)")
    args = parser.parse_args()
    spec, _ = load_study_file(args.study)
    edited = spec.canonical()
    edited["model"]["n_boot"] = int(edited["model"]["n_boot"]) + 1
    out = args.out or Path(tempfile.mkdtemp(prefix="hybridrad-rerun-"))
    rows = []
    for label, study in (
        ("from scratch", args.study),
        ("rerun, unchanged", args.study),
        ("model section edited", parse_study(edited)),
    ):
        start = time.perf_counter()
        result = run_study(study, out, jobs=args.jobs, progress=False)
        seconds = time.perf_counter() - start
        rows.append((label, seconds, result.computed()))
    first = rows[0][1]
    print(f"study {spec.name!r}, output {out}")
    print(f"{'run':<22} {'seconds':>8} {'ratio':>7}  stages computed")
    for label, seconds, computed in rows:
        print(f"{label:<22} {seconds:8.1f} {seconds / first:7.3f}  {', '.join(computed) or '-'}")


if __name__ == "__main__":
    main()
