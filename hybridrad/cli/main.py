"""``main(argv)``: parse, check, run one handler, and turn what went wrong into an exit
status and one line on stderr.

The parser is assembled from the handler modules named in :data:`COMMAND_MODULES`
(:mod:`hybridrad.cli.cohort`, :mod:`hybridrad.cli.segment` ...), each of which registers
its subcommands with ``add_parsers(subparsers)``. Building it imports no torch; the
handlers import the API they call when they run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib import import_module

from hybridrad import __version__
from hybridrad.cli.common import one_line
from hybridrad.errors import HybridradError

Handler = Callable[[argparse.Namespace], int]

#: The handler modules (``hybridrad.cli.<name>``), in the order ``hybridrad --help`` lists
#: their commands: the flow of a study. Each has ``add_parsers(subparsers)``; a new module
#: of commands is one more name here.
COMMAND_MODULES: tuple[str, ...] = (
    "convert",
    "cohort",
    "preprocess",
    "segment",
    "features",
    "study",
    "run",
)

#: Commands that read a manifest; each gets ``--nonfinite`` and ``--allow-outside``.
MANIFEST_COMMANDS = (
    "validate",
    "preprocess",
    "extract",
    "robustness",
    "seg-train",
    "segment",
    "seg-eval",
    "deep-features",
    "pretrain",
    "contour-agreement",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hybridrad`` command.

    Returns
    -------
    argparse.ArgumentParser
        With one subcommand per command of the modules in :data:`COMMAND_MODULES`; each
        subcommand's ``func`` default is its handler.
    """
    from hybridrad.io.manifest import add_input_arguments

    parser = argparse.ArgumentParser(
        prog="hybridrad",
        description="Hybrid radiomics + deep-feature prognostics for cohorts of scans.",
    )
    parser.add_argument("--version", action="version", version=f"hybridrad {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(f"hybridrad.cli.{name}").add_parsers(sub)
    for name in MANIFEST_COMMANDS:
        add_input_arguments(sub.choices[name])
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    """hybridrad's messages at INFO (DEBUG with -vv, WARNING with -q); other libraries'
    at WARNING unless -vv. pyradiomics' own stderr handler is left to itself."""
    ours = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    theirs = logging.DEBUG if verbose > 1 else logging.WARNING

    def keep(record: logging.LogRecord) -> bool:
        level = ours if record.name.startswith("hybridrad") else theirs
        return record.levelno >= level

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(keep)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_hybridrad", False)]
    setattr(handler, "_hybridrad", True)  # noqa: B010 - marks our own handler
    root.addHandler(handler)
    root.setLevel(min(ours, theirs))
    logging.getLogger("radiomics").propagate = False  # it prints through its own handler


#: What ``--out`` is for each command: a folder, or a file with one of these suffixes.
#: Checked before any case is computed (:mod:`hybridrad.preflight`).
OUTPUTS: dict[str, str | tuple[str, ...]] = {
    "extract": (".parquet",),
    "robustness": (".csv",),
    "evaluate": "folder",
    "fit": "folder",
    "predict": (".csv",),
    "score": "folder",
    "seg-train": "folder",
    "segment": "folder",
    "preprocess": "folder",
    "convert": "folder",
    "seg-eval": (".csv",),
    "deep-features": (".parquet",),
    "pretrain": "folder",
    "contour-agreement": "folder",
    "discover": (".csv",),
    "demo-cohort": "folder",
    "demo": "folder",
    "run": "folder",
}

#: Exit statuses of :func:`main`.
EXIT_OK, EXIT_FAILED_CASES, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def preflight(args: argparse.Namespace) -> None:
    """Refuse, before any compute, outputs that cannot be written and absent devices."""
    from hybridrad import preflight as pf

    kind = OUTPUTS.get(args.command)
    out = getattr(args, "out", None)
    if kind is not None and out is not None:
        if kind == "folder":
            pf.output_folder(out)
        else:
            pf.output_file(out, kind)
    report = getattr(args, "report", None)
    if report is not None:
        pf.output_file(report, (".csv",), what="--report")
    device = getattr(args, "device", None)
    if device is not None:
        pf.check_device(device)


def _input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a problem with the user's input (exit 2) rather than a bug."""
    import yaml

    return isinstance(exc, (HybridradError, OSError, yaml.YAMLError))


#: Lower bounds of the numeric options of every command (``dest``: (bound, inclusive)).
#: A value outside is a usage error (exit 2) before anything runs.
NUMBER_BOUNDS: dict[str, tuple[float, bool]] = {
    "jobs": (1, True),
    "cases": (2, True),
    "perturbations": (2, True),
    "epochs": (1, True),
    "batch_size": (1, True),
    "sw_batch_size": (1, True),
    "repeats": (1, True),
    "n_boot": (0, True),
    "num_workers": (0, True),
    "threads": (1, True),
    "tolerance": (0, True),
    "max_minutes": (0, False),
    "lr": (0, False),
    "temperature": (0, False),
    "horizon": (0, False),
    "confidence": (0, False),
}


def check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse numeric options that are not finite or below their bound (``NUMBER_BOUNDS``),
    and a ``--confidence`` of 1 or more, with argparse's usage error (exit 2)."""
    import math

    for dest, (low, inclusive) in NUMBER_BOUNDS.items():
        value = getattr(args, dest, None)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        flag = "--" + dest.replace("_", "-")
        if not math.isfinite(value):
            parser.error(f"{flag} must be a finite number, got {value}")
        if value < low or (value == low and not inclusive):
            parser.error(f"{flag} must be {'>=' if inclusive else '>'} {low:g}, got {value:g}")
    confidence = getattr(args, "confidence", None)
    if isinstance(confidence, float) and confidence >= 1:
        parser.error(f"--confidence must be below 1, got {confidence:g}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success; 1 the data has problems (validation failed, some cases failed: the
    others are written); 2 bad input or usage stopped the run (one line naming the
    case, file or column and the fix); 3 an internal error (a bug: please report it).
    Tracebacks are printed only with ``-v``; interrupted runs keep their cache.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    check_numbers(parser, args)
    _configure_logging(args.verbose, args.quiet)
    handler: Handler = args.func
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            preflight(args)
            return handler(args)
        except KeyboardInterrupt:
            print(
                "interrupted: finished cases are cached; rerun the command to resume",
                file=sys.stderr,
            )
            return 130
        except Exception as exc:
            if args.verbose:
                import traceback

                traceback.print_exc()
            message = one_line(exc)
            if _input_error(exc):
                for problem in getattr(exc, "problems", None) or [exc]:
                    print(f"error: {type(problem).__name__}: {one_line(problem)}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(
                f"internal error: {type(exc).__name__}: {message}. This is a bug in "
                f"hybridrad {__version__}; rerun with -v for the traceback and report it.",
                file=sys.stderr,
            )
            return EXIT_INTERNAL
        finally:
            summary = summarize_warnings(caught)
            if summary:
                print(summary, file=sys.stderr)
                last = getattr(args, "last_line", None)  # e.g. `run`: the report's path
                if last:
                    sys.stderr.flush()
                    print(last, flush=True)


def summarize_warnings(caught: Sequence[warnings.WarningMessage]) -> str:
    """Every distinct warning once, with how often it was raised (the end of a run).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     for _ in range(3):
    ...         warnings.warn("few events", UserWarning)
    >>> print(summarize_warnings(w))
    warnings (3 in all, 1 distinct):
      UserWarning: few events (x3)
    """
    counts: dict[tuple[str, str], int] = {}
    for w in caught:
        key = (w.category.__name__, str(w.message).strip())
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    lines = [f"warnings ({sum(counts.values())} in all, {len(counts)} distinct):"]
    for (category, message), n in counts.items():
        lines.append(f"  {category}: {message}" + (f" (x{n})" if n > 1 else ""))
    return "\n".join(lines)
