"""The ``hybridrad`` command line: a thin layer over the Python API.

Every subcommand parses its arguments and calls the public API; :func:`main` returns
the exit status so tests can call it in-process.

- :mod:`hybridrad.cli.main` - :func:`main` (exit statuses, error lines, warnings
  summary, logging), :func:`build_parser`, the checks run before any compute.
- :mod:`hybridrad.cli.cohort` - ``validate``, ``discover``, ``demo-cohort``.
- :mod:`hybridrad.cli.segment` - ``seg-train``, ``segment``, ``seg-eval``, ``models``.
- :mod:`hybridrad.cli.features` - ``extract``, ``robustness``, ``deep-features``,
  ``pretrain``, ``contour-agreement``.
- :mod:`hybridrad.cli.study` - ``evaluate``, ``fit``, ``predict``, ``score``.
- :mod:`hybridrad.cli.demo` - ``demo``.

Nothing in the package imports this one (only ``hybridrad.__main__``).
"""

from __future__ import annotations

from hybridrad.cli.main import (
    COMMAND_MODULES,
    EXIT_BAD_INPUT,
    EXIT_FAILED_CASES,
    EXIT_INTERNAL,
    EXIT_OK,
    MANIFEST_COMMANDS,
    NUMBER_BOUNDS,
    OUTPUTS,
    build_parser,
    check_numbers,
    main,
    preflight,
    summarize_warnings,
)

__all__ = [
    "COMMAND_MODULES",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED_CASES",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "MANIFEST_COMMANDS",
    "NUMBER_BOUNDS",
    "OUTPUTS",
    "build_parser",
    "check_numbers",
    "main",
    "preflight",
    "summarize_warnings",
]
