"""Render: a template, a Resource and a Snapshot in, bytes out.

- :mod:`.environment`: the Jinja2 environment; ``check``'s compile of every template
- :mod:`.functions`: the template functions, bound to one snapshot per render
- :mod:`.filters`: fromjson, b64decode, b64encode
- :mod:`.errors`: any failure as one RenderError naming template:line

Never imports :mod:`imdsrender.config`: what a template includes comes in
on the Resource.  Consequence of binding the functions per render (Jinja's
rule): a macro file brought in with ``{% import %}`` sees them only when
imported ``with context``; ``{% include %}`` and ``{% extends %}`` always do.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

from ..fetch import Snapshot
from ..model import Resource
from .environment import check_templates, make_environment
from .errors import RenderError, render_error, withheld
from .filters import FILTERS, b64decode, b64encode, fromjson
from .functions import Pair, Reader, getenv

__all__ = ["FILTERS", "Pair", "RenderError", "Rendered", "b64decode", "b64encode",
           "check_templates", "fromjson", "getenv", "make_environment", "render"]


@dataclass(frozen=True)
class Rendered:
    content: bytes
    sensitive: bool  # the template read a credentials path: diffs and logs must redact


def render(env: jinja2.Environment, resource: Resource, snapshot: Snapshot) -> Rendered:
    """Render one resource from the snapshot, or RenderError naming template:line and key."""
    reader = Reader(resource, snapshot)
    try:
        text = env.get_template(resource.template).render(reader.functions())
        content = text.encode("utf-8", "surrogateescape")
    except Exception as exc:  # one line naming the template, whatever went wrong
        error = render_error(env, resource, exc)
        if reader.sensitive:  # the text may embed a secret: never chain or log it as is
            raise withheld(error, exc, reader.secrets) from None
        raise error from exc
    return Rendered(content=content, sensitive=reader.sensitive)
