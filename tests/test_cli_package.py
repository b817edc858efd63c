"""The ``hybridrad.cli`` package: one handler module per area, assembled into one parser."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from importlib import import_module

from hybridrad import __version__
from hybridrad.cli import COMMAND_MODULES, MANIFEST_COMMANDS, OUTPUTS, build_parser


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_each_command_comes_from_one_module() -> None:
    owners: dict[str, str] = {}
    for name in COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        import_module(f"hybridrad.cli.{name}").add_parsers(parser.add_subparsers())
        for command in _commands(parser):
            assert command not in owners, f"{command} in {owners.get(command)} and {name}"
            owners[command] = name
    assert list(owners) == _commands(build_parser())
    assert owners["validate"] == "cohort" and owners["models"] == "segment"
    assert owners["contour-agreement"] == "features" and owners["score"] == "study"
    assert set(MANIFEST_COMMANDS) <= set(owners)
    assert set(OUTPUTS) <= set(owners)


def test_input_flags_on_every_manifest_command() -> None:
    parser = build_parser()
    for command in MANIFEST_COMMANDS:
        required = {
            "extract": ["--out", "o.parquet"],
            "robustness": ["--out", "o.csv"],
            "seg-train": ["--out", "m"],
            "segment": ["--out", "o"],
            "preprocess": ["--config", "glioma_mri", "--out", "o"],
            "seg-eval": ["--pred", "p"],
            "deep-features": ["--out", "o.parquet"],
            "pretrain": ["--out", "e"],
            "contour-agreement": ["--pred", "p", "--out", "o"],
        }.get(command, [])
        args = parser.parse_args([command, "m.csv", *required, "--nonfinite", "replace"])
        assert args.nonfinite == "replace" and args.allow_outside is False
        assert callable(args.func)


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return out.stdout.strip()


def test_importing_the_cli_imports_no_scientific_stack() -> None:
    heavy = "('pandas', 'numpy', 'SimpleITK', 'scipy', 'sklearn', 'torch', 'monai')"
    code = (
        "import sys\nimport hybridrad.cli\n"
        f"print(sorted(m for m in {heavy} if m in sys.modules))\n"
        "hybridrad.cli.build_parser()\n"
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    imported, built = _run(code).splitlines()
    assert imported == "[]"
    assert not {"scipy", "sklearn", "torch", "monai"} & set(ast.literal_eval(built))


def test_python_dash_m_runs_the_cli() -> None:
    for module in ("hybridrad", "hybridrad.cli"):
        out = subprocess.run(
            [sys.executable, "-m", module, "--version"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and __version__ in out.stdout


def test_engine_choices_match_the_engine_package() -> None:
    from hybridrad.cli.features import ENGINE_CHOICES
    from hybridrad.features.engine import ENGINES

    assert ENGINE_CHOICES == ENGINES
