"""Key normalisation and listing parsing: pure, no sockets."""

from __future__ import annotations

import pytest

from imdsrender.keys import (
    InvalidKey,
    is_credentials,
    normalize_key,
    parse_listing,
    redact,
    union,
)


@pytest.mark.parametrize("key, expected", [
    ("/latest/meta-data/instance-id", "/meta-data/instance-id"),
    ("/meta-data/instance-id", "/meta-data/instance-id"),
    ("/instance-id", "/meta-data/instance-id"),
    ("instance-id", "/meta-data/instance-id"),
    ("/meta-data/tags/instance/", "/meta-data/tags/instance/"),
    ("/tags/instance/", "/meta-data/tags/instance/"),
    ("/dynamic/instance-identity/document", "/dynamic/instance-identity/document"),
    ("/latest/user-data", "/user-data"),
    ("/user-data/", "/user-data"),
    ("/meta-data//placement///region", "/meta-data/placement/region"),
    ("/meta-data/tags/instance/a=b", "/meta-data/tags/instance/a=b"),
])
def test_normalize_key(key: str, expected: str) -> None:
    assert normalize_key(key) == expected


@pytest.mark.parametrize("key", ["/meta-data/../x", "/meta-data/./x", "/meta-data/a?b",
                                 "/meta-data/a#b", "/meta-data/%2e%2e", "", "/", "/latest"])
def test_hostile_or_empty_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        normalize_key(key)


def test_listing_is_cleaned() -> None:
    children, skipped = parse_listing("/meta-data/d/", b"b\r\n\r\na/\nb\n\n c \n")
    assert children == ("/meta-data/d/b", "/meta-data/d/a/", "/meta-data/d/c")
    assert skipped == ()


def test_empty_listing_is_an_empty_directory() -> None:
    assert parse_listing("/meta-data/tags/instance/", b"") == ((), ())


def test_one_entry_listing_without_newline() -> None:
    assert parse_listing("/meta-data/network/interfaces/macs/", b"0e:11:22:33:44:55/") == \
        (("/meta-data/network/interfaces/macs/0e:11:22:33:44:55/",), ())


def test_hostile_entries_are_skipped_not_rewritten() -> None:
    children, skipped = parse_listing("/meta-data/d/", b"ok\n.\n..\n../up\na/b\nx?y\nx#y\n%2e\n")
    assert children == ("/meta-data/d/ok",)
    assert skipped == (".", "..", "../up", "a/b", "x?y", "x#y", "%2e")


def test_public_keys_equals_means_subdirectory() -> None:
    children, _ = parse_listing("/meta-data/public-keys/", b"0=my-key\n1=other=key")
    assert children == ("/meta-data/public-keys/0/", "/meta-data/public-keys/1/")


def test_equals_elsewhere_is_a_plain_name() -> None:
    children, _ = parse_listing("/meta-data/tags/instance/", b"team=core\nName")
    assert children == ("/meta-data/tags/instance/team=core", "/meta-data/tags/instance/Name")


def test_non_utf8_entries_survive() -> None:
    children, _ = parse_listing("/meta-data/d/", b"caf\xe9")
    assert children == ("/meta-data/d/caf\udce9",)


@pytest.mark.parametrize("path, secret", [
    ("/meta-data/iam/security-credentials/role", True),
    ("/meta-data/iam/security-credentials/", True),
    ("/meta-data/iam/", True),  # contains the credentials directory
    ("/meta-data/", True),
    ("/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", True),
    ("/meta-data/iam/info", False),
    ("/meta-data/instance-id", False),
    ("/meta-data/iam", False),  # a leaf key: only the directory form walks below
])
def test_is_credentials(path: str, secret: bool) -> None:
    assert is_credentials(path) is secret


def test_redact() -> None:
    assert redact("/meta-data/iam/security-credentials/r", "SECRET") == "<redacted>"
    assert redact("/meta-data/instance-id", "i-1") == "i-1"


def test_union_drops_keys_inside_requested_directories() -> None:
    assert union(["/meta-data/a/b", "/meta-data/a/", "/meta-data/a/c/", "/meta-data/z",
                  "/meta-data/z"]) == ("/meta-data/a/", "/meta-data/z")


def test_only_ascii_blanks_are_stripped_from_listing_entries() -> None:
    children, _ = parse_listing("/meta-data/tags/instance/", b"Name \t\nNBSP\xc2\xa0\n")
    assert children == ("/meta-data/tags/instance/Name",
                        "/meta-data/tags/instance/NBSP\u00a0")
