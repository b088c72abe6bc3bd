"""Render failures as one line naming ``templates/NAME:LINE`` and what to do.

Whatever a render raises (a template function's Problem, a Jinja error, an
encoding error) becomes one :class:`RenderError` located at the innermost
template frame of the traceback.
"""

from __future__ import annotations

import os
import traceback
from typing import Iterable, Optional

import jinja2

from ..errors import Error, Problem
from ..keys import TEMPLATE_FUNCTIONS
from ..model import Resource
from .environment import templates_dir
from .redact import redact


class RenderError(Error):
    """A resource that could not be rendered (exit 1; other resources go on)."""


def render_error(env: jinja2.Environment, resource: Resource, exc: Exception) -> RenderError:
    where = _position(env, exc) or f"templates/{resource.template}"
    if isinstance(exc, Problem):
        return exc.at(where, RenderError)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return RenderError(f"templates/{exc.name or resource.template}:{exc.lineno}",
                           exc.message or "template syntax error", "run imdsrender check")
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(where, f"template {exc.name!r} does not exist",
                           f"looked in {templates_dir(env)}")
    if isinstance(exc, jinja2.UndefinedError):
        return RenderError(where, exc.message or "undefined value", _undefined_hint(exc))
    if isinstance(exc, UnicodeEncodeError):
        return RenderError(where, "output holds text that is not encodable as UTF-8",
                           "check the values that are written out")
    if isinstance(exc, UnicodeDecodeError):
        return RenderError(where, "template is not valid UTF-8", "save it as UTF-8")
    if isinstance(exc, Error):
        return RenderError(where, str(exc))
    return RenderError(where, f"{type(exc).__name__}: {exc}")


def withheld(error: RenderError, exc: Exception, secrets: Iterable[str]) -> RenderError:
    """*error* fit for the log of a render that has read credentials (see :mod:`.redact`).

    Our own messages keep their meaning with secret stretches redacted;
    any other exception's text is withheld, keeping its kind and the line.
    """
    secrets = tuple(secrets)
    if isinstance(exc, Problem):
        return RenderError(error.where, redact(error.what, secrets), redact(error.hint, secrets))
    return RenderError(error.where,
                       f"{type(exc).__name__} after reading credentials (message withheld: "
                       "it may hold a secret)",
                       "check how the template uses the values it reads from iam/")


def _undefined_hint(exc: jinja2.UndefinedError) -> str:
    for name in TEMPLATE_FUNCTIONS:
        if exc.message == f"'{name}' is undefined":
            return "a macro file must be imported 'with context' to use the template functions"
    return "define it, or test it with 'is defined' first"


def _position(env: jinja2.Environment, exc: BaseException) -> Optional[str]:
    """"templates/NAME:LINE" of the innermost template frame in the traceback.

    Jinja rewrites tracebacks so template frames carry the template's file
    name and line, which is exactly what a user needs to find the call.
    """
    root = templates_dir(env)
    if root is None:
        return None
    root = os.path.abspath(root)
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if path.startswith(root + os.sep) and frame.lineno:
            where = f"templates/{os.path.relpath(path, root)}:{frame.lineno}"
    return where
