"""config.settings: imdsrender.yaml; every error one exact line."""

from __future__ import annotations

from pathlib import Path

import pytest

from imdsrender.config import (
    ImdsSettings,
    Settings,
    load_settings,
)
from tests.config.support import error_of, write

# ----------------------------------------------------------------- settings

def test_settings_defaults_without_a_file(tmp_path: Path) -> None:
    assert load_settings(None) == Settings()
    assert load_settings(str(tmp_path / "absent.yaml")) == Settings()


def test_settings_required_file_must_exist(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yaml")
    assert error_of(load_settings, path, required=True) == (
        f"{path}: no such file; check the --config path")


def test_settings_every_field(tmp_path: Path, loader: str) -> None:
    path = write(tmp_path, """\
        imds:
          endpoint: http://127.0.0.1:1338/
          endpoint_mode: IPv6
          token_ttl: 300
          timeout: 500ms
          retries: 0
          boot_wait: 2m
          run_timeout: 5m
          allow_imdsv1: true
        cache_ttl: 30s
        concurrency: 4
        """)
    assert load_settings(path) == Settings(
        imds=ImdsSettings(endpoint="http://127.0.0.1:1338", endpoint_mode="ipv6",
                          token_ttl=300, timeout=0.5, retries=0, boot_wait=120.0,
                          run_timeout=300.0, allow_imdsv1=True),
        cache_ttl=30.0, concurrency=4)


def test_settings_empty_file_and_empty_values_are_defaults(tmp_path: Path, loader: str) -> None:
    assert load_settings(write(tmp_path, "")) == Settings()
    assert load_settings(write(tmp_path, "imds:\ncache_ttl:\n")) == Settings()


@pytest.mark.parametrize("text,message", [
    ("cache_tl: 5s\n", "1: unknown field 'cache_tl' (did you mean 'cache_ttl'?)"),
    ("imds:\n  retires: 2\n", "2: unknown field 'retires' (did you mean 'retries'?)"),
    ("zzz: 1\n", "1: unknown field 'zzz'; known fields: imds, cache_ttl, concurrency, state_dir"),
    ("imds:\n  token_ttl: 0\n", "2: token_ttl must be 1..21600, not 0"),
    ("imds:\n  token_ttl: 21601\n", "2: token_ttl must be 1..21600, not 21601"),
    ("imds:\n  token_ttl: '60'\n", "2: token_ttl must be a whole number, not a string"),
    ("imds:\n  retries: -1\n", "2: retries must be 0..100, not -1"),
    ("imds:\n  retries: 1000000000000\n", "2: retries must be 0..100, not 1000000000000"),
    ("imds:\n  retries: true\n", "2: retries must be a whole number, not a boolean"),
    ("concurrency: 0\n", "1: concurrency must be 1..256, not 0"),
    ("concurrency: 4000000\n", "1: concurrency must be 1..256, not 4000000"),
    ("imds:\n  endpoint_mode: ipv5\n", "2: endpoint_mode must be ipv4 or ipv6, not 'ipv5'"),
    ("imds:\n  endpoint: 169.254.169.254\n",
     "2: endpoint '169.254.169.254' is not an http:// URL; write e.g. http://169.254.169.254"),
    ("imds:\n  timeout: 0s\n",
     "2: timeout must be 0.001s..3600s, not 0s; write e.g. 500ms, 30s, 2m, 1h"),
    ("imds:\n  timeout: 3000000h\n",
     "2: timeout must be 0.001s..3600s, not 1.08e+10s; write e.g. 500ms, 30s, 2m, 1h"),
    ("imds:\n  boot_wait: 2h\n",
     "2: boot wait must be 0s..3600s, not 7200s; write e.g. 500ms, 30s, 2m, 1h"),
    ("cache_ttl: 3000000h\n",
     "1: cache ttl must be 0s..604800s, not 1.08e+10s; write e.g. 500ms, 30s, 2m, 1h"),
    ("imds:\n  boot_wait: 1 minute\n",
     "2: invalid duration '1 minute'; write e.g. 500ms, 30s, 2m, 1h or plain seconds"),
    ("cache_ttl: -1s\n", "1: negative duration '-1s'; durations must be >= 0"),
    ("imds:\n  allow_imdsv1: maybe\n", "2: allow_imdsv1 must be true or false, not a string"),
    ("imds: 3\n", "1: imds must be a mapping, not a number"),
    ("- a\n", "1: the settings file must be a mapping, not a list"),
    ("concurrency: 2\nconcurrency: 3\n", "2: field 'concurrency' is given twice"),
])
def test_settings_errors_name_file_line_and_field(tmp_path: Path, loader: str, text: str,
                                                  message: str) -> None:
    path = write(tmp_path, text)
    assert error_of(load_settings, path) == f"{path}:{message}"


def test_settings_yaml_syntax_error_has_the_line(tmp_path: Path, loader: str) -> None:
    path = write(tmp_path, "imds:\n  retries: 3\n  timeout: [1s\n\nconcurrency: 2\n")
    message = error_of(load_settings, path)
    assert message.startswith(f"{path}:5: invalid YAML: ")


def test_settings_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "imdsrender.yaml"
    path.write_bytes(b"cache_ttl: 5s\n# \xff\n")
    assert error_of(load_settings, str(path)) == (
        f"{path}:2: not valid UTF-8 (byte 17 of the file); save the file as UTF-8")
