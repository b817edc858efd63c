"""What several handler modules share: reading the cohort of a command's arguments and
the one-line form of an error."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hybridrad.io.manifest import Cohort


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (``(no message)`` when it has none)."""
    return " ".join(str(exc).split()) or "(no message)"


def read_cohort(args: argparse.Namespace) -> Cohort:
    """The cohort of ``args.manifest``, with ``--sequences``, ``--labels`` and the input
    flags (``--nonfinite``, ``--allow-outside``) of the command."""
    from hybridrad.io.manifest import Cohort, cohort_options, comma_list

    return Cohort.from_csv(
        args.manifest,
        sequences=comma_list(args.sequences) or None,
        label_map=args.labels,
        **cohort_options(args),
    )
