"""Every user-facing error kind and its exit code.

The ground floor: this module imports nothing of the package, so any module
(the CLI, the transport, the emulator) can raise these without pulling in
another layer.  The CLI catches :class:`Error` once and prints it as one line.
"""

from typing import Optional, Type, TypeVar


class Error(Exception):
    """An error the user can cause or fix, printed by the CLI as one line.

    ``where`` names the file/key/flag, ``what`` says what went wrong and
    ``hint`` what to do about it.  Subclasses set ``exit_code`` per DESIGN.md:
    1 a resource failed, 2 usage/config error, 3 IMDS unavailable.
    """

    exit_code = 1

    def __init__(self, where: str, what: str, hint: str = "") -> None:
        super().__init__(where, what, hint)
        self.where = where
        self.what = what
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}; {self.hint}" if self.hint else text


class UsageError(Error):
    """Bad flags, config or templates: nothing was fetched, nothing written."""

    exit_code = 2


E = TypeVar("E", bound=Error)


class ConfigError(UsageError):
    """A mistake in a config file, a template or a flag: exit 2.

    Here rather than in :mod:`imdsrender.config` so that ``check`` (in
    :mod:`imdsrender.render`) can report a template that does not compile
    without importing the config loader.
    """


class Problem(Exception):
    """What went wrong and what to do about it, before it is known where.

    Raised deep inside a step that cannot know the file and line (a
    template function, the template scanner); the caller that does know
    turns it into a user-facing error with :meth:`at`.  The one home of
    the what/hint shape.
    """

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint

    def at(self, where: str, kind: Type[E] = Error,  # type: ignore[assignment]
           hint: Optional[str] = None) -> E:
        """This problem as a *kind* error at *where*; *hint* replaces an empty hint."""
        return kind(where, self.what, self.hint or hint or "")
