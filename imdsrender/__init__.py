"""imdsrender: render configuration files from EC2 instance metadata (IMDSv2).

Kept tiny on purpose: ``imdsrender --version`` imports only this module, so
nothing heavy (urllib3, Jinja2, PyYAML) may be imported here.
"""

__version__ = "0.1.0"


def ascii_int(text: "str | None") -> "int | None":
    """A non-negative integer written in ASCII digits, else None.

    Every number read from a header, a flag or a config string goes through
    here: str.isdigit() alone accepts '\u00b2' and other digits that int()
    then refuses with a ValueError.
    """
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


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
