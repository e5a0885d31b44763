"""Griffe extension: the package's docstrings as mkdocstrings should render them.

The docstrings are numpydoc with Sphinx habits, which read well in ``help()`` and in the source:

- cross-reference roles (``:func:`~ser_classic.timeline.timeline```) would show up as literal
  text in Markdown; each becomes the code span of its target (`` `timeline` ``);
- constants are documented by a ``#:`` comment above them, which griffe does not read; the
  comment becomes the constant's docstring.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|data|mod|obj|exc|const):`(~?)([^`]+)`")


def _code_span(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _comment_above(obj: griffe.Object) -> str | None:
    """The ``#:`` comment lines right above ``obj``'s first line, without their markers."""
    if not obj.lineno:
        return None
    lines = obj.module.lines
    comment: list[str] = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].strip().startswith("#:"):
        comment.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return " ".join(comment) or None


class SphinxDocstrings(griffe.Extension):
    """Rewrite roles in every docstring; give ``#:``-commented attributes their comment."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None and obj.is_attribute:
            text = _comment_above(obj)
            if text:
                obj.docstring = griffe.Docstring(text, lineno=obj.lineno, endlineno=obj.lineno, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_code_span, obj.docstring.value)
