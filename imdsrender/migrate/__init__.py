"""confd -> imdsrender: TOML template resources + Go templates -> YAML + Jinja2.

``imdsrender migrate-confd SRC OUT`` reads a confd confdir (``conf.d/**.toml``,
``templates/``, optionally ``confd.toml`` for the global ``prefix``) and
writes an imdsrender confdir.  Nothing is ever converted in place.

Go templates are translated by a small lexer and parser for Go template
actions, not by pattern substitution: every action is parsed into a pipeline
and re-emitted as the Jinja2 expression or statement with the same meaning
under confd's semantics (keys relative to the prefix, ``getvs`` sorted by
value, ``{{-``/``-}}`` trimming, Go's scoping of ``$variables``).  A
construct with no safe translation is marked in the output with a
``{# imdsrender-migrate: untranslated: ... #}`` comment followed by a
reference to an undefined name (so the template fails loudly instead of
rendering something subtly different), and reported as ``file:line``.

The parts, in the order data flows: ``golex`` (Go's lexer), ``goparse``
(pipelines), ``expressions``/``functions``/``ranges``/``statements`` (the
translator, with ``scope`` for Go's variable scoping and ``jinjatext`` for
what it writes), ``template`` (one template), ``keyuse`` (what the template's
reads make of confd's keys), ``resources`` (one TOML resource), ``confdir``
(the walk and the report).
"""

from ..markers import MARKER, find_markers
from .common import (
    PLACEHOLDER,
    MigrationError,
    MigrationReport,
    fold_prefix,
    full_key,
)
from .confdir import migrate_confdir
from .resources import convert_command, convert_resource
from .template import convert_template

__all__ = ["MARKER", "PLACEHOLDER", "MigrationError", "MigrationReport", "convert_command",
           "convert_resource", "convert_template", "find_markers", "fold_prefix", "full_key",
           "migrate_confdir"]
