"""Jinja filters that put untrusted values into shell and env files safely.

Tag and user-data values are written by anyone with the right EC2
permissions, so a template must never paste them raw into a file that a
shell sources or systemd parses: ``web\\nAPI_ENDPOINT=...`` would add a
variable and ``$(cmd)`` would run.  Each filter here returns text that reads
back as exactly the value in its format, or fails the resource with an
error that names the problem and never the value (it may be a secret).

Pure and standard library only: a value in, a string out.  Values arrive as
text in which undecodable bytes are surrogate escapes (as render.py decodes
them); the shell filter keeps those bytes, formats that require UTF-8 refuse
them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Dict, Optional

from ..errors import Error


class QuotingError(Error):
    """A value a quoting filter cannot represent safely: the resource fails (exit 1)."""


# Characters that some reader of a text file takes as the end of a line:
# str.splitlines()' set (NL, CR, VT, FF, FS, GS, RS, NEL, LS, PS).
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Left bare by shell_quote (as shlex.quote does) and envfile: nothing here is
# special to sh or to systemd's env-file parser after "KEY=".
_PLAIN = re.compile(r"[A-Za-z0-9@%+=:,./_-]+")
# systemd's env-file parser (and sh) unescape exactly these after a backslash
# inside double quotes; every other backslash is kept as it is.
_ENV_ESCAPE = re.compile(r'([\\"`$])')
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# EC2 instance tag keys may use letters, digits and these: each becomes "_".
_NAME_PUNCTUATION = frozenset(" +-=.,:@")
_CONTROL_NAMES = {"\0": "NUL", "\t": "tab", "\n": "line feed", "\r": "carriage return"}


def _text(value: Any) -> str:
    """What the template would print for *value*; bytes keep undecodable bytes as escapes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _describe(char: str) -> str:
    """Name a character without quoting the value it came from."""
    if "\udc80" <= char <= "\udcff":
        return "a byte that is not valid UTF-8"
    name = _CONTROL_NAMES.get(char) or unicodedata.name(char, "")
    if not name:  # C0/C1 controls and surrogates have no Unicode name
        name = "surrogate" if _is_surrogate(char) else "control character"
    return f"U+{ord(char):04X} ({name})"


def _refuse(name: str, text: str, bad: Callable[[str], bool], hint: str,
            noun: str = "value") -> None:
    """Fail naming the first offending character and its position, never the value."""
    index = next((i for i, char in enumerate(text) if bad(char)), None)
    if index is not None:
        what = f"{noun} holds {_describe(text[index])} at character {index + 1}"
        raise QuotingError(name, what, hint)


def _is_surrogate(char: str) -> bool:
    return "\ud800" <= char <= "\udfff"


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or _is_surrogate(char)


# ------------------------------------------------------------------ filters

def shell_quote(value: Any) -> str:
    """One POSIX shell word that sh, dash and bash read back as exactly *value*.

    Single quotes keep every byte literal; a ``'`` is written ``'\\''``.  A NUL
    cannot be passed through a shell at all, so it fails the resource.
    """
    text = _text(value)
    _refuse("shquote", text, lambda char: char == "\0",
            "a shell cannot hold a NUL byte; remove it from the value")
    if _PLAIN.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def envfile(value: Any, multiline: bool = False) -> str:
    """A value for ``KEY=`` in a systemd ``EnvironmentFile=`` that sh reads the same way.

    Double quotes with ``\\``, ``"``, `````, ``$`` escaped: inside them systemd
    keeps every character (newlines, ``#``, leading and trailing blanks) and
    unescapes exactly those four, as sh does.  systemd rejects the whole file
    on invalid UTF-8 and neither reader can hold NUL, so both fail the
    resource.  A line break is refused unless ``multiline=true``: systemd and
    sh read it back inside the quotes, but line-based readers of env files do
    not.  Values of only plain characters are left bare, as in shell_quote.
    """
    text = _text(value)
    _refuse("envfile", text, lambda char: char == "\0" or _is_surrogate(char),
            "systemd env files hold UTF-8 text without NUL bytes only")
    if not multiline:
        _refuse("envfile", text, _LINE_BREAKS.__contains__,
                "use envfile(multiline=true) if every reader of the file is "
                "systemd or a POSIX shell, or strip the line breaks")
    if _PLAIN.fullmatch(text):
        return text
    return '"' + _ENV_ESCAPE.sub(r"\\\1", text) + '"'


def single_line(value: Any) -> str:
    """The value unchanged if it is one line without control characters, else fail.

    For formats without a quoting rule: whatever the reader, such a value
    cannot start a new line or smuggle terminal and parser control bytes.
    """
    text = _text(value)
    _refuse("single_line", text, _is_control,
            "the value must be one line of printable UTF-8 text")
    return text


def env_name(key: Any, prefix: Optional[str] = None) -> str:
    """*prefix* + *key* as a variable name: letters, digits and ``_`` only.

    The tag-key punctuation (``+ - = . , : @`` and space) becomes ``_``;
    anything else fails.  The prefix is required because a bare attacker-chosen
    name could set ``PATH``, ``LD_PRELOAD`` or ``BASH_ENV`` for the service.
    """
    text = _text(key)
    if not prefix or not _ENV_NAME.fullmatch(prefix):
        raise QuotingError("env_name", "needs a prefix that is itself a variable name",
                    "write e.g. env_name('TAG_'), so a key cannot name PATH or LD_PRELOAD")
    if not text:
        raise QuotingError("env_name", "key is empty", "skip empty keys in the template")
    if "/" in text:
        raise QuotingError("env_name", "key holds '/'",
                    "pass the last path component: key.rsplit('/', 1)[-1]")
    _refuse("env_name", text,
            lambda char: not (char.isascii() and (char.isalnum() or char == "_"))
            and char not in _NAME_PUNCTUATION,
            "variable names are built from ASCII letters, digits and + - = . , : @ _ only",
            noun="key")
    return prefix + "".join("_" if char in _NAME_PUNCTUATION else char for char in text)


FILTERS: Dict[str, Callable[..., Any]] = {
    "shquote": shell_quote,
    "envfile": envfile,
    "single_line": single_line,
    "env_name": env_name,
}
