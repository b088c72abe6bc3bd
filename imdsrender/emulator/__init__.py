"""An IMDSv2 emulator for tests, benchmarks, ``imdsrender demo`` and ``imdsrender emulator``.

One collaborator per module, composed by :class:`Emulator` (``core``):

- ``protocol``: parse a request head, frame an answer like the real service;
- ``tokens``: issue and check IMDSv2 session tokens;
- ``faults``: one injected misbehaviour, the table that arms them, ``--fault``;
- ``scenarios``: the real service's bad days by name (``SCENARIOS``);
- ``handler``: the connection handler on :mod:`imdsrender.serving`;
- ``launch``: ``serve()``, the checked entry point of ``imdsrender emulator``.

Production code never imports this package (an import-linter contract).
"""

from ..imds.wire import TTL_HEADER
from .core import Emulator
from .faults import parse_fault_spec
from .handler import SHORT_BODY_EXTRA
from .launch import serve
from .records import RequestRecord
from .scenarios import SCENARIOS, Scenario, make_scenario

__all__ = ["SCENARIOS", "SHORT_BODY_EXTRA", "TTL_HEADER", "Emulator", "RequestRecord",
           "Scenario", "make_scenario", "parse_fault_spec", "serve"]
