"""The documentation site's sources (the build itself, `mkdocs build --strict`, runs in
`make test` / `make docs`): the generated command-line reference covers every subcommand
of the real parser, and the navigation and API pages point at things that exist."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


gen_cli = _load("gen_cli")


def _walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every subcommand of ``parser``, found independently of the generator."""
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[(*path, name)] = sub
                found.update(_walk(sub, (*path, name)))
    return found


def _section(page: str, anchor: str) -> str:
    """The Markdown of one command's section (up to the next command heading)."""
    match = re.search(
        rf"^#+ `[^`]+` \{{#{re.escape(anchor)}\}}\n(.*?)(?=^#+ `|\Z)", page, re.M | re.S
    )
    assert match, f"no section with id {anchor!r}"
    return match.group(1)


def test_cli_reference_covers_every_subcommand_and_option() -> None:
    from hybridrad.cli import build_parser

    parser = build_parser()
    commands = _walk(parser)
    assert len(commands) >= 15  # validate, extract, ..., demo: the parser really was walked
    page = gen_cli.render_cli_reference(parser)
    listed = {c.path for c in gen_cli.iter_commands(parser)}
    assert listed == set(commands)
    for path, sub in commands.items():
        anchor = "-".join(path)
        name = " ".join(("hybridrad", *path))
        assert f"[`{name}`](#{anchor})" in page, f"{name} missing from the command table"
        section = _section(page, anchor)
        assert f"usage: {name}" in section
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                assert f"`{option}" in section or f", {option}" in section, (
                    f"{name}: option {option} is not documented"
                )
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert f"`{action.metavar or action.dest}`" in section, (
                    f"{name}: argument {action.dest} is not documented"
                )


def test_cli_reference_renders_defaults_choices_nesting_and_markdown_characters() -> None:
    parser = argparse.ArgumentParser(prog="hybridrad", description="Top.")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("alpha", help="first | command", description="Alpha <things> *here*.")
    p.add_argument("table", help="a_b table")
    p.add_argument("--level", choices=["low", "high"], default="low", help="the `level`")
    p.add_argument("--n", type=int, default=3, help="how many (default %(default)s)")
    p.add_argument("--out", required=True, help="where")
    group = sub.add_parser("group", help="nested commands")
    inner = group.add_subparsers(dest="inner")
    inner.add_parser("leaf", help="a nested command").add_argument("--flag", action="store_true")

    page = gen_cli.render_cli_reference(parser)
    assert [c.anchor for c in gen_cli.iter_commands(parser)] == ["alpha", "group", "group-leaf"]
    assert "## `hybridrad alpha` {#alpha}" in page
    assert "### `hybridrad group leaf` {#group-leaf}" in page
    assert "first \\| command" in page  # a pipe cannot split the command table's row
    assert "Alpha &lt;things&gt; \\*here\\*." in page
    assert "| `table` |  | a\\_b table |" in page
    assert "| `--level {low,high}` | `low` | the `level` |" in page
    assert "how many (default 3)" in page
    assert "**required**. where" in page
    assert "[`hybridrad group leaf`](#group-leaf)" in page
    assert "usage: hybridrad group leaf [-h] [--flag]" in page


def _nav_files(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [f for item in node for f in _nav_files(item)]
    if isinstance(node, dict):
        return [f for value in node.values() for f in _nav_files(value)]
    return []


def test_navigation_lists_every_page_and_only_existing_ones() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_files(config["nav"])
    generated = {gen_cli.PAGE}
    for page in nav:
        assert page in generated or (DOCS / page).is_file(), f"nav names a missing page {page}"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk <= set(nav), f"pages left out of the nav: {sorted(on_disk - set(nav))}"
    for path in ("gen_cli.py", "failure_modes.md", "ibsi_conformance.md", "benchmarks.md"):
        assert (DOCS / path).is_file()


@pytest.mark.parametrize(
    "page", sorted((DOCS / "reference" / "api").glob("*.md")), ids=lambda p: p.stem
)
def test_api_pages_name_importable_modules(page: Path) -> None:
    for module in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M):
        assert importlib.util.find_spec(module) is not None, f"{page.name}: no module {module}"
