"""The one Jinja2 environment of a run, and ``check``'s compile of every template.

StrictUndefined (a typo is an error, not an empty string),
keep_trailing_newline (files end as their templates do), no autoescape
(these are config files, not HTML), and the filters of :mod:`.filters`.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional, Set

import jinja2

from ..errors import ConfigError
from ..model import Resource
from .filters import FILTERS


def make_environment(templates_dir: str) -> jinja2.Environment:
    """The one environment of a run: each template is compiled once and cached.

    auto_reload is off: templates are read as they were when the config was
    loaded (their keys were derived from that text), not half-way through an
    interval run.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.abspath(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


def templates_dir(env: jinja2.Environment) -> Optional[str]:
    """The directory the environment loads templates from (None: not a file loader)."""
    paths = getattr(env.loader, "searchpath", None)
    return paths[0] if paths else None


def check_templates(env: jinja2.Environment, resources: Iterable[Resource]) -> None:
    """Compile every template and what it includes: ConfigError with file:line.

    Compiling with the real environment also catches unknown filters and
    tests, which parsing alone (config loading) does not.  What a template
    includes was found once, at load (``Resource.closure``); nothing is
    parsed twice to find it again.
    """
    done: Set[str] = set()
    for resource in resources:
        for name in resource.closure or (resource.template,):
            if name not in done:
                done.add(name)
                _compile(env, name)


def _compile(env: jinja2.Environment, name: str) -> None:
    try:
        env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"templates/{exc.name or name}:{exc.lineno}",
                          exc.message or "template syntax error") from None
    except jinja2.TemplateNotFound:
        raise ConfigError(f"templates/{name}", "template does not exist",
                          f"looked in {templates_dir(env)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"templates/{name}", "not valid UTF-8", "save it as UTF-8") from None
