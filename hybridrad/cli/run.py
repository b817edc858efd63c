"""``run``: a whole study from one YAML file; ``demo``: the shipped demo study."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _cmd_run(args: argparse.Namespace) -> int:
    from hybridrad.study.run import run_study

    result = run_study(
        args.study, args.out, jobs=args.jobs, force=args.force, progress=not args.quiet
    )
    done = ", ".join(f"{name} {s['status']}" for name, s in result.stages.items())
    print(f"stages: {done}")
    print(f"study hash: {result.study_hash}; outputs in {result.out}")
    if result.n_failed:
        print(f"{result.n_failed} case(s) failed in some stage: see the stages' *.failures.csv")
    print(f"report: {result.report}")
    args.last_line = f"report: {result.report}"  # printed again after the warnings summary
    return 0 if result.n_failed == 0 else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    args.study = "demo"
    return _cmd_run(args)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--jobs", type=int, default=2, help="worker processes for per-case stages (default 2)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute every stage (finished cases still come from the per-case cache)",
    )


def add_parsers(sub: Any) -> None:
    """Add ``run`` and ``demo`` to the ``hybridrad`` parser."""
    text = (
        "run a whole study from a YAML file (or a shipped one: demo, lgg): cohort, "
        "preprocessing, segmentation, handcrafted and deep features, nested-CV evaluation, "
        "external validation and the HTML report; every stage is cached, so a rerun "
        "recomputes only what its edits change"
    )
    p = sub.add_parser("run", help="run a whole study from a YAML file", description=text)
    p.add_argument("study", help="study YAML file, or a shipped study name (demo, lgg)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default ./<study name>-output; reused: finished stages are kept)",
    )
    _common(p)
    p.set_defaults(func=_cmd_run)
    text = (
        "run the demo study (hybridrad run demo): a synthetic cohort generated on the fly, "
        "auto-segmented, handcrafted + deep features, survival and subtype models, an "
        "external cohort and the HTML report"
    )
    p = sub.add_parser("demo", help="run the demo study on a synthetic cohort", description=text)
    p.add_argument(
        "out",
        type=Path,
        nargs="?",
        default=Path("demo-output"),
        help="output folder (default ./demo-output)",
    )
    _common(p)
    p.set_defaults(func=_cmd_demo)
