"""Griffe extension of the documentation site: Sphinx roles in docstrings become links.

hybridrad's docstrings are numpy style and use Sphinx cross-reference roles
(``:func:`~hybridrad.models.fusion.load_feature_tables```, ``:class:`LabelMap```).
mkdocstrings would print those roles verbatim. This extension (listed under
``extensions`` of the mkdocstrings handler in ``mkdocs.yml``) rewrites each role, before
the docstring is parsed, into an *optional* autorefs cross-reference: a link where the
target is rendered on the site, plain code where it is not (an external library, a
private helper), so strict builds never fail on a role. The docstrings themselves stay
as they are.

- ``~`` shows the last component only, as in Sphinx: ``:func:`~a.b.c``` shows ``c``.
- A bare name (``:class:`LabelMap```) is looked up in the docstring's own module, then
  among the members of the documented object's class.
- ``:math:`S(t \\mid x)``` becomes inline code.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?P<role>func|class|meth|mod|attr|data|obj|exc|const|ref):`(?P<target>[^`]+)`"
)


def _module_of(obj: griffe.Object) -> griffe.Object:
    current: griffe.Object = obj
    while not current.is_module and current.parent is not None:
        current = current.parent
    return current


def _resolve(target: str, obj: griffe.Object) -> str:
    """The dotted identifier a role target names, seen from ``obj``'s docstring."""
    if target.startswith("hybridrad."):
        return target
    head, _, rest = target.partition(".")
    for scope in (obj if obj.is_class else obj.parent, _module_of(obj)):
        if scope is not None and head in scope.members:
            member = scope.members[head]
            base = member.target_path if member.is_alias else member.path  # imported names
            return f"{base}.{rest}" if rest else base
    return target


MATH = re.compile(r":math:`(?P<formula>[^`]+)`")


def rewrite(text: str, obj: griffe.Object) -> str:
    """``text`` with every Sphinx role replaced by an optional autorefs reference."""

    def replace(match: re.Match[str]) -> str:
        target = match["target"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", target)
        if explicit:  # :func:`title <target>`
            title, target = explicit["title"], explicit["target"]
        else:
            title = target.lstrip("~")
            if target.startswith("~"):
                title = title.rsplit(".", 1)[-1]
            target = target.lstrip("~")
        target = target.removesuffix("()")
        identifier = html.escape(_resolve(target, obj), quote=True)
        return f'<autoref identifier="{identifier}" optional>`{title}`</autoref>'

    return MATH.sub(r"`\g<formula>`", ROLE.sub(replace, text))


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring of the loaded packages."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Called by griffe once per object after the whole package is loaded."""
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = rewrite(obj.docstring.value, obj)
