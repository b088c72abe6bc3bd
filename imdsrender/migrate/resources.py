"""One confd template resource (a parsed TOML table) as an imdsrender entry."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import UsageError
from ..quantities import parse_duration
from .common import fold_prefix, full_key
from .golex import Action, Comment, LexError, Text, lex
from .jinjatext import one_line
from .keyuse import Use, derive_keys, key_form, uncovered

# Resource fields translated one to one (confd name -> imdsrender name).
_RESOURCE_FIELDS = ("src", "dest", "keys", "mode", "uid", "gid", "owner", "group",
                    "check_cmd", "reload_cmd", "check_cmd_timeout", "reload_cmd_timeout",
                    "prefix")


def convert_command(cmd: str, where: str, allowed: Sequence[str]) -> Tuple[str, Tuple[str, ...]]:
    """confd's check_cmd/reload_cmd (``{{.src}}``/``{{.dest}}``) in imdsrender form."""
    try:
        items = lex(cmd)
    except LexError as exc:
        return cmd, (f"{where}: cannot parse command template: {exc.what}",)
    out: List[str] = []
    problems: List[str] = []
    for item in items:
        if isinstance(item, Text):
            out.append(item.text)
        elif isinstance(item, Action) and len(item.tokens) == 1 and \
                item.tokens[0].kind == "field" and item.tokens[0].text[1:] in allowed:
            out.append(f"{{{{ {item.tokens[0].text[1:]} }}}}")
        else:
            source = item.source if isinstance(item, Action) else "{{/*...*/}}"
            if isinstance(item, Comment):
                continue
            problems.append(f"{where}: untranslated {one_line(source)} in command "
                            f"(only {', '.join('{{.' + a + '}}' for a in allowed)} are supported)")
            out.append(source)
    return "".join(out), tuple(problems)


def output_template_name(src: str) -> str:
    stem = src[: -len(".tmpl")] if src.endswith(".tmpl") else src
    return stem + ".j2"


# Go's units below a millisecond; imdsrender's durations start at ms.
_GO_SMALL_UNITS = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs)")
_GO_SMALL = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6}


def _go_duration(value: Any) -> Optional[float]:
    """Seconds from a TOML number (seconds) or a Go duration string ("1m30s"); None: invalid.

    imdsrender's own parse_duration reads numbers and the units it shares
    with Go (ms, s, m, h); only what Go adds is handled here: units below a
    millisecond, and the rule that a duration string needs a unit.
    """
    small = 0.0
    if isinstance(value, str):
        text = value.strip()
        if not text or re.fullmatch(r"[\d.]+", text):
            return None  # Go: "missing unit"
        small = sum(float(n) * _GO_SMALL[u] for n, u in _GO_SMALL_UNITS.findall(text))
        rest = _GO_SMALL_UNITS.sub("", text)
        if not rest:
            return small
        value = rest
    try:
        return parse_duration(value, "") + small
    except UsageError:
        return None


def _duration_text(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"


def _parse_mode(value: Any) -> Tuple[Optional[int], str]:
    """confd's strconv.ParseUint(mode, 0, 32): "0644" octal, "644" decimal."""
    if not isinstance(value, str):
        return None, "mode must be a string such as \"0644\""
    text = value.strip().replace("_", "")
    try:
        if re.fullmatch(r"0[oO]?[0-7]+", text):
            mode = int(text.lstrip("0").lstrip("oO") or "0", 8)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            mode = int(text, 16)
        elif re.fullmatch(r"0[bB][01]+", text):
            mode = int(text, 2)
        elif re.fullmatch(r"\d+", text):
            mode = int(text, 10)
            if mode > 7:
                return None, (f"mode {value!r} is decimal to confd (= 0{mode:o}); "
                              f"write \"0{text}\" if octal was meant")
        else:
            return None, f"mode {value!r} is not a number"
    except ValueError:
        return None, f"mode {value!r} is not a number"
    if mode > 0o7777:
        return None, f"mode {value!r} has bits beyond 07777"
    return mode, ""


def _line_of(text: str, field_name: str, table: bool = False) -> int:
    """Line of ``field = ...`` (or of the ``[table]`` header) in a TOML file; 0: not found."""
    name = re.escape(field_name)
    if table:
        m = re.compile(r"^\s*\[\s*" + name + r"\s*[\].]", re.M).search(text)
    else:
        m = re.compile(r"^\s*[\"']?" + name + r"[\"']?\s*=", re.M).search(text)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def _keys(keys: Any, prefix: str, uses: List[Use], where: str,
          template_name: str) -> Tuple[List[str], List[str]]:
    """The resource's keys as full IMDS paths, each decided leaf or directory."""
    problems: List[str] = []
    if keys is None:  # confd accepts it: the template's reads say what to fetch
        if not any(kind in ("prefix", "unknown") for _, kind, _ in uses):
            return [], problems  # imdsrender derives literal keys itself
        keys_full = derive_keys(uses)
    elif not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return [], [f"{where}: keys must be a list of strings"]
    else:
        keys_full = [full_key(prefix, k) for k in keys]
    out: List[str] = []
    for full in keys_full:
        if not full.endswith("/"):
            form = key_form(full, uses)
            if form.directory:
                full += "/"
            if form.undecided:
                problems.append(f"{template_name}:{form.line}: a key built at run time may read "
                                f"below {full[:-1]}; made it the directory key {full} (if it is "
                                "one value, remove the trailing /)")
        if full not in out:
            out.append(full)
    return out, problems


def convert_resource(doc: Mapping[str, Any], name: str, global_prefix: str = "", *,
                     text: str = "", template_keys: Iterable[Tuple[str, str, int]] = (),
                     template_name: str = "") -> Tuple[Dict[str, Any], Tuple[str, ...]]:
    """One confd template resource (the parsed TOML) as an imdsrender entry.

    *name* is the TOML file's name for problem lines (``conf.d/x.toml``),
    *text* its source (for line numbers), *template_keys* the (key, kind,
    line) literals its converted template *template_name* uses: they tell
    directory keys apart and are checked against the keys.
    """
    problems: List[str] = []

    def where(field_name: str, table: bool = False) -> str:
        line = _line_of(text, field_name, table) if text else 0
        return f"{name}:{line}" if line else name

    tpl = doc.get("template")
    if not isinstance(tpl, Mapping):
        return {}, (f"{name}: no [template] table",)
    for key in doc:
        if key != "template":
            at = where(key, isinstance(doc[key], Mapping))
            problems.append(f"{at}: [{key}] is not translated (imdsrender reads IMDS only)")
    for key in tpl:
        if key not in _RESOURCE_FIELDS:
            problems.append(f"{where(key)}: field {key!r} has no imdsrender equivalent; "
                            "not translated")
    entry: Dict[str, Any] = {}
    src = tpl.get("src")
    if not isinstance(src, str) or not src:
        problems.append(f"{where('src')}: src is missing")
    else:
        entry["src"] = output_template_name(src)
    dest = tpl.get("dest")
    if not isinstance(dest, str) or not dest:
        problems.append(f"{where('dest')}: dest is missing")
    else:
        entry["dest"] = dest
        if not dest.startswith("/"):
            problems.append(f"{where('dest')}: dest {dest!r} is relative (confd resolved it "
                            "against its working directory); write the absolute path")
    prefix = fold_prefix(global_prefix, str(tpl.get("prefix") or ""))
    out_keys, key_problems = _keys(tpl.get("keys"), prefix, list(template_keys),
                                   where("keys"), template_name or "templates")
    problems.extend(key_problems)
    if out_keys:  # none: imdsrender derives them from the template
        entry["keys"] = out_keys
        problems.extend(uncovered(out_keys, template_keys, template_name or "templates", name))
    if "mode" in tpl:
        mode, why = _parse_mode(tpl["mode"])
        if mode is None:
            problems.append(f"{where('mode')}: {why}")
        else:
            entry["mode"] = f"{mode:04o}"
    for confd_id, confd_name, ours in (("uid", "owner", "owner"), ("gid", "group", "group")):
        if confd_id in tpl:  # confd: a number wins over a name
            if isinstance(tpl[confd_id], int) and not isinstance(tpl[confd_id], bool) \
                    and tpl[confd_id] >= 0:
                entry[ours] = tpl[confd_id]
            else:
                problems.append(f"{where(confd_id)}: {confd_id} must be a number")
        elif confd_name in tpl:
            entry[ours] = tpl[confd_name]
    for cmd_field, allowed in (("check_cmd", ("src",)), ("reload_cmd", ("src", "dest"))):
        if cmd_field in tpl:
            cmd, cmd_problems = convert_command(str(tpl[cmd_field]), where(cmd_field), allowed)
            entry[cmd_field] = cmd
            problems.extend(cmd_problems)
    for confd_t, ours in (("check_cmd_timeout", "check_timeout"),
                          ("reload_cmd_timeout", "reload_timeout")):
        if confd_t in tpl:
            seconds = _go_duration(tpl[confd_t])
            if seconds is None or seconds <= 0:
                problems.append(f"{where(confd_t)}: {confd_t} {tpl[confd_t]!r} is not a duration")
            else:
                entry[ours] = _duration_text(seconds)
    return entry, tuple(problems)
