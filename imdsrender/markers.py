"""The marker ``migrate-confd`` leaves where it could not translate, and finding it.

Ground floor (standard library only): the migrator writes the marker and
``check`` refuses a template that still holds one, without ``check``
importing the migrator.  The one home of the marker's text.
"""

from typing import List

MARKER = "imdsrender-migrate: untranslated"


def find_markers(text: str) -> List[int]:
    """Line numbers (1-based) of the untranslated-spot markers left in a template.

    ``check`` uses this to fail while a migrated template still has a spot
    to fix, naming file:line.
    """
    return [n for n, line in enumerate(text.splitlines(), 1) if MARKER in line]
