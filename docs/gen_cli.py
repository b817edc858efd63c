"""Generate the command-line reference (``reference/cli.md``) from the argument parser.

Run by the ``gen-files`` plugin of ``mkdocs.yml`` at every build, so the page always
describes the parser that ``hybridrad`` really uses: it imports
``hybridrad.cli.build_parser`` and walks every subcommand (nested subcommands
included), writing each one's usage line, description and options (with defaults and
choices) as Markdown. Nothing is written into ``docs/``: the page exists only in the
built site.

``render_cli_reference(parser)`` and ``iter_commands(parser)`` are importable (the test
``tests/test_docs_site.py`` checks that every subcommand is on the page).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import dataclass

PAGE = "reference/cli.md"
WIDTH = 88  # usage lines are wrapped at this width, whatever the terminal


@dataclass(frozen=True)
class Command:
    """One (sub)command of the parser tree."""

    path: tuple[str, ...]  # ("seg-train",) or ("group", "sub") for nested subcommands
    parser: argparse.ArgumentParser
    summary: str  # the one-line help shown in the parent's list of commands

    @property
    def name(self) -> str:
        """The command as typed: ``hybridrad seg-train``."""
        return " ".join(("hybridrad", *self.path))

    @property
    def anchor(self) -> str:
        """The id of the command's heading on the page (``seg-train``)."""
        return "-".join(self.path)


def _subparser_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def iter_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every subcommand of ``parser``, depth first, in the order they were added.

    Hidden subcommands (``help=argparse.SUPPRESS``) are included: a command a user can
    type is documented.
    """
    for action in _subparser_actions(parser):
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        seen: set[int] = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already listed
                continue
            seen.add(id(sub))
            summary = helps.get(name, "")
            if summary == argparse.SUPPRESS:
                summary = ""
            command = Command((*path, name), sub, summary or (sub.description or ""))
            yield command
            yield from iter_commands(sub, command.path)


_ESCAPE = re.compile(r"([\\*_\[\]|])")
_CODE_SPAN = re.compile(r"(`[^`]+`)")


def _text(value: str) -> str:
    """Plain text made safe for a Markdown paragraph or table cell; spans in backticks
    (``hybridrad models``) stay code."""
    value = " ".join(value.split())
    parts = _CODE_SPAN.split(value)
    for i, part in enumerate(parts):
        if i % 2 == 0:  # outside code spans (pipes inside them do not split a table row)
            part = part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            parts[i] = _ESCAPE.sub(r"\\\1", part)
    return "".join(parts)


def _code(value: str) -> str:
    """Inline code (pipes inside it do not split a table row)."""
    fence = "``" if "`" in value else "`"
    return f"{fence} {value} {fence}" if fence == "``" else f"`{value}`"


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = parser.formatter_class(prog=parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    formatter = parser.formatter_class(prog=parser.prog, width=WIDTH)
    try:
        return str(formatter._expand_help(action))
    except (KeyError, TypeError, ValueError):  # a literal % in a help text
        return str(action.help)


def _invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    formatter = parser.formatter_class(prog=parser.prog, width=WIDTH)
    metavar = formatter._format_args(action, action.dest.upper())
    return ", ".join(f"{option} {metavar}" for option in action.option_strings)


def _default(action: argparse.Action) -> str:
    default = action.default
    if action.nargs == 0 or default is None or default == argparse.SUPPRESS:
        return ""
    if isinstance(default, (list, tuple)):
        default = ",".join(str(v) for v in default)
    return _code(str(default))


def _option_rows(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[str]:
    rows = ["| argument | default | description |", "|---|---|---|"]
    for action in actions:
        text = _text(_help(parser, action))
        invocation = _invocation(parser, action)
        if action.choices is not None and "{" not in invocation:
            choices = ", ".join(_code(str(c)) for c in action.choices)
            text = f"{text} (choices: {choices})" if text else f"choices: {choices}"
        if action.required and action.option_strings:
            text = f"**required**. {text}"
        rows.append(f"| {_code(invocation)} | {_default(action)} | {text} |")
    return rows


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    """The parser's arguments, one table per argument group (positionals, options ...)."""
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and a.help != argparse.SUPPRESS
        ]
        if not actions:
            continue
        title = (group.title or "arguments").strip()
        lines += ["", f"**{_text(title[:1].upper() + title[1:])}**", ""]
        if group.description:
            lines += [_text(group.description), ""]
        lines += _option_rows(parser, actions)
    return lines


def render_command(command: Command) -> str:
    """The Markdown section of one command."""
    parser = command.parser
    level = "#" * min(2 + len(command.path) - 1, 4)
    lines = [f"{level} `{command.name}` {{#{command.anchor}}}", ""]
    if command.summary:
        lines += [_text(command.summary[:1].upper() + command.summary[1:]) + ".", ""]
    lines += ["```text", _usage(parser), "```"]
    if parser.description and parser.description.strip() != command.summary.strip():
        lines += ["", _text(parser.description)]
    lines += _arguments(parser)
    children = [
        c for c in iter_commands(parser, command.path) if len(c.path) == len(command.path) + 1
    ]
    if children:
        lines += ["", "Subcommands: " + ", ".join(f"[`{c.name}`](#{c.anchor})" for c in children)]
    if parser.epilog:
        lines += ["", _text(parser.epilog)]
    return "\n".join(lines) + "\n"


def render_cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole command-line reference page (Markdown) of ``parser``.

    ``parser`` defaults to ``hybridrad.cli.build_parser()``.
    """
    if parser is None:
        from hybridrad.cli import build_parser

        parser = build_parser()
    commands = list(iter_commands(parser))
    lines = [
        "# Command line",
        "",
        "<!-- Generated from hybridrad.cli.build_parser() by docs/gen_cli.py at every "
        "build; do not edit. -->",
        "",
        "Every command of `hybridrad`, generated from its argument parser when the site is "
        "built (`hybridrad COMMAND --help` prints the same). Exit statuses: 0 done, 1 some "
        "cases or checks failed (the rest was written), 2 bad input or usage, 3 internal "
        "error, 130 interrupted; see [Failure modes](../failure_modes.md).",
        "",
        "```text",
        _usage(parser),
        "```",
    ]
    if parser.description:
        lines += ["", _text(parser.description)]
    lines += _arguments(parser)
    lines += ["", "## Commands", "", "| command | what it does |", "|---|---|"]
    for command in commands:
        indent = "&nbsp;&nbsp;" * (len(command.path) - 1)
        lines.append(
            f"| {indent}[`{command.name}`](#{command.anchor}) | {_text(command.summary)} |"
        )
    lines.append("")
    body = "\n".join(lines) + "\n"
    return body + "\n".join(render_command(c) for c in commands)


def main() -> None:
    """Write the page through mkdocs-gen-files (only inside ``mkdocs build``/``serve``)."""
    import mkdocs_gen_files

    with mkdocs_gen_files.open(PAGE, "w") as handle:
        handle.write(render_cli_reference())
    mkdocs_gen_files.set_edit_path(PAGE, "gen_cli.py")


if __name__ == "<run_path>":  # mkdocs-gen-files runs the script with runpy.run_path
    main()
elif __name__ == "__main__":  # python docs/gen_cli.py: print the page
    print(render_cli_reference(), end="")
