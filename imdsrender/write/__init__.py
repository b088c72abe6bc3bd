"""Writing rendered files: stage -> check -> replace -> reload (DESIGN.md "Writing files").

One collaborator a module, composed by :mod:`.sync` (the per-resource
pipeline): :mod:`.paths` (opening dest's directory so that no non-root user can
redirect the write), :mod:`.files` (stage names, atomic write, cleanup of
stale stage files, the small-file atomic write), :mod:`.commands` (check_cmd/reload_cmd
in their own process group, with a deadline), :mod:`.diff`.  This package
never imports metrics: what metrics need travels in the
:class:`~imdsrender.model.Outcome`.
"""

from ..model import FAILED, UNCHANGED, WOULD_WRITE, WRITTEN, Outcome
from .commands import CommandResult, Runner, describe_failure, fill_placeholders, run_command
from .diff import diff, printable
from .files import WriteError, cleanup_stale, stage_path, stage_pattern, write_small_file
from .sync import sync

__all__ = [
    "FAILED", "UNCHANGED", "WOULD_WRITE", "WRITTEN", "CommandResult", "Outcome", "Runner",
    "WriteError", "cleanup_stale", "describe_failure", "diff", "fill_placeholders",
    "printable", "run_command", "stage_path", "stage_pattern", "sync", "write_small_file",
]
