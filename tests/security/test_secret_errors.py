"""Issue 13 item 3: a template that misuses a credentials value must not log it.

The attack: ``{{ d[json(CREDS).SecretAccessKey] }}`` and friends make Jinja
or Python raise an error whose text embeds the secret, and that text used
to become the ERROR line.  Fuzzed over every way a misuse can fail, then end
to end through the CLI (text and JSON logs, the metrics textfile).
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import List, Optional

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from imdsrender.fetch import Snapshot
from imdsrender.fixture import default_fixture
from imdsrender.metrics.registry import Metrics
from imdsrender.model import FAILED, Outcome
from imdsrender.render import RenderError, make_environment, render
from imdsrender.render.redact import GRAM
from tests.helpers import ConfDir, run_cli
from tests.render.support import ORIGIN, Resource

CREDS = "/meta-data/iam/security-credentials/web-role"

# Ways to reach a secret value (E in the misuses below).
SECRETS = [
    f"json('{CREDS}').SecretAccessKey",
    f"json('{CREDS}')['Token']",
    f"getv('{CREDS}')",
    f"json('{CREDS}').SecretAccessKey[:12]",
    f"json('{CREDS}').SecretAccessKey | upper",
    f"(getvs('{CREDS}') | first)",
    f"gets('{CREDS}')[0].value",
]

# Every way Jinja (or a filter, or a template function) can fail on a string.
MISUSES = [
    "{% set d = {} %}{{ d[E] }}",  # dict key
    "{{ (E)[E] }}",  # element of a string
    "{{ (E).nope }}",  # undefined attribute
    "{{ (E).nope.deeper }}",
    "{{ (E) + 1 }}",  # arithmetic
    "{{ (E) / 2 }}",  # division
    "{{ (E) < 1 }}",  # comparison
    "{{ (E)() }}",  # call of a string
    "{{ range(E) }}",  # int() of a string
    "{{ '%d' % (E) }}",  # format
    "{{ '{:d}'.format(E) }}",
    "{{ (E) | fromjson }}",  # filter on the wrong type
    "{{ (E) | b64decode }}",
    "{{ ((E) ~ '\\n') | single_line }}",
    "{{ (E) | attr(E) }}",
    "{% include E %}",  # include of a name
    "{% import E as m %}",
    "{{ getv(E) }}",  # a value used as a key
    "{{ json(E) }}",
    "{{ ls(E) }}",
]

TEMPLATES = [m.replace("E", s) for m, s in itertools.product(MISUSES, SECRETS)]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"


def leaks(secret: str, text: str) -> List[str]:
    """Stretches of *secret* (GRAM long, any case) that appear in *text*."""
    lowered = text.lower()
    return [secret[i:i + GRAM] for i in range(len(secret) - GRAM + 1)
            if secret[i:i + GRAM].lower() in lowered]


# What every withheld message says whatever the secret: the error kinds and the wording.
WITHHELD_WORDING = ("templates/t UndefinedError TemplateSyntaxError TemplateNotFound TypeError "
                    "ValueError ZeroDivisionError KeyError AttributeError IndexError "
                    "after reading credentials (message withheld: it may hold a secret); "
                    "check how the template uses the values it reads from iam/ "
                    "/meta-data/iam/security-credentials/web-role")


class Renderer:
    """A templates directory that takes a fresh template name per example."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="secret-errors-"))
        self.env = make_environment(str(self.dir))
        self.count = itertools.count()

    def error(self, text: str, document: dict) -> RenderError:
        error = self.attempt(text, document)
        assert error is not None, f"{text} rendered"
        return error

    def attempt(self, text: str, document: dict) -> Optional[RenderError]:
        """The render's error, None when *text* happens to render."""
        name = f"t{next(self.count)}.j2"
        (self.dir / name).write_text(text)
        resource = Resource(origin=ORIGIN, src=str(self.dir / name), template=name,
                            dest="/etc/app/out", keys=("/meta-data/iam/",))
        snapshot = Snapshot(values={CREDS: json.dumps(document).encode()})
        try:
            render(self.env, resource, snapshot)
        except RenderError as exc:
            return exc
        return None


RENDERER = Renderer()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(template=st.sampled_from(TEMPLATES),
       secret=st.text(_ALPHABET, min_size=GRAM, max_size=60),
       token=st.text(_ALPHABET, min_size=GRAM, max_size=200))
def test_no_misuse_of_a_secret_puts_it_in_the_error(template: str, secret: str,
                                                    token: str) -> None:
    document = {"Code": "Success", "AccessKeyId": "ASIAEXAMPLE",
                "SecretAccessKey": secret, "Token": token}
    error = RENDERER.attempt(template, document)
    assume(error is not None)  # e.g. fromjson of the whole document succeeds
    assert error is not None
    text = str(error)
    assert text.startswith("templates/t"), text  # still names the template and line
    # A stretch that the message says anyway ("UNDEFINE" in "UndefinedError") is no leak.
    assume(not leaks(secret, WITHHELD_WORDING) and not leaks(token, WITHHELD_WORDING))
    assert leaks(secret, text) == [] and leaks(token, text) == [], (template, text)
    assert error.__cause__ is None and error.__suppress_context__  # no chained original


def test_the_reported_attack_names_the_line_and_withholds_the_rest() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    error = RENDERER.error("line one\n{% set d = {} %}{{ d[json('%s').SecretAccessKey] }}\n"
                           .replace("%s", CREDS), {"SecretAccessKey": secret})
    assert str(error).startswith("templates/t") and ":2: UndefinedError after reading " \
        "credentials (message withheld" in str(error)
    assert secret not in str(error)


def test_our_own_messages_keep_their_meaning_with_the_secret_cut_out() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    error = RENDERER.error(f"{{{{ getv('/meta-data/tags/instance/' ~ json('{CREDS}')"
                           ".SecretAccessKey) }}", {"SecretAccessKey": secret})
    assert "is not in keys" in str(error) and "<redacted>" in str(error)
    assert leaks(secret, str(error)) == []


def test_errors_before_any_credentials_read_are_unchanged() -> None:
    error = RENDERER.error("{{ getv('/meta-data/iam/info') }}", {})
    assert "key /meta-data/iam/info is missing" in str(error)


# --- end to end: the CLI against the emulator -----------------------------------------

LEAKY = {
    "dict.j2": "{% set d = {} %}{{ d[json('CREDS').SecretAccessKey] }}\n",
    "include.j2": "x\n{% include json('CREDS').Token %}\n",
}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_cli_never_prints_the_secret(tmp_path: Path, make_emulator, log_format: str) -> None:
    document = {"Code": "Success", "AccessKeyId": "ASIAQ3EGRSQ2EXAMPLE",
                "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8EXAMPLEKEY",
                "Token": "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6Xq0pZ"}
    emulator = make_emulator(data={**default_fixture(), CREDS: json.dumps(document).encode()})
    confdir = ConfDir(tmp_path)
    for name, text in LEAKY.items():
        confdir.resource(name, text.replace("CREDS", CREDS), keys=[CREDS])
    textfile = tmp_path / "imdsrender.prom"
    result = run_cli("--onetime", *confdir.flags(emulator), "--log-format", log_format,
                     "--metrics-textfile", str(textfile))
    assert result.returncode == 1, result.stderr
    outputs = [result.stdout, result.stderr, textfile.read_text()]
    for secret in (document["SecretAccessKey"], document["Token"]):
        assert all(leaks(secret, output) == [] for output in outputs), result.stderr
    assert "templates/dict.j2:1: UndefinedError after reading credentials" in result.stderr
    assert "templates/include.j2:2: TemplateNotFound after reading credentials" \
        in result.stderr


def test_metrics_exposition_holds_no_error_text() -> None:
    """/metrics serves this exposition: a failed sensitive resource adds only its dest."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    error = RENDERER.error(f"{{{{ {{}}[json('{CREDS}').SecretAccessKey] }}}}",
                           {"SecretAccessKey": secret})
    metrics = Metrics()
    metrics.run_finished([Outcome("/etc/app/out", FAILED, error=error)], 0.1)
    exposition = metrics.exposition().decode()
    assert "/etc/app/out" in exposition and leaks(secret, exposition) == []
    assert leaks(secret, json.dumps(metrics.details())) == []
