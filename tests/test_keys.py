"""DESIGN.md "Keys", rule by rule: the real client and fetcher against the emulator."""

from __future__ import annotations

import base64
from typing import Callable, Dict, Iterable, Union

import pytest

from imdsrender.config import ImdsSettings
from imdsrender.emulator import Emulator
from imdsrender.fetch import FetchFailed, Plan, Snapshot, fetch
from imdsrender.imds.client import ImdsClient
from imdsrender.model import Settings

Make = Callable[..., Emulator]


def fetch_keys(emulator: Emulator, keys: Iterable[str], **settings: object) -> Snapshot:
    imds = ImdsSettings(**settings)  # type: ignore[arg-type]
    client = ImdsClient(imds, endpoint=emulator.url, environ={})
    return fetch(Plan.of([list(keys)]), client, Settings(imds=imds).fetch_limits())


def tree(extra: Dict[str, Union[str, bytes, None]]) -> Dict[str, Union[str, bytes, None]]:
    base: Dict[str, Union[str, bytes, None]] = {"/meta-data/instance-id": "i-1"}
    base.update(extra)
    return base


def test_single_entry_directories_are_directories(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({
        "/meta-data/tags/instance/Name": "solo",
        "/meta-data/network/interfaces/macs/0e:00:00:00:00:01/subnet-id": "subnet-1",
        "/meta-data/iam/security-credentials/only-role": '{"Code": "Success"}',
    }))
    snapshot = fetch_keys(emulator, ["/meta-data/tags/instance/",
                                     "/meta-data/network/interfaces/macs/",
                                     "/meta-data/iam/security-credentials/"])
    assert snapshot.value("/meta-data/tags/instance/Name") == b"solo"
    assert snapshot.value(
        "/meta-data/network/interfaces/macs/0e:00:00:00:00:01/subnet-id") == b"subnet-1"
    assert snapshot.value("/meta-data/iam/security-credentials/only-role") == \
        b'{"Code": "Success"}'
    assert snapshot.children("/meta-data/network/interfaces/macs/") == \
        ("/meta-data/network/interfaces/macs/0e:00:00:00:00:01/",)


def test_multi_line_leaves_stay_values(emulator: Emulator) -> None:
    snapshot = fetch_keys(emulator, ["/dynamic/instance-identity/document",
                                     "/meta-data/security-groups",
                                     "/meta-data/iam/security-credentials/"])
    document = snapshot.value("/dynamic/instance-identity/document")
    assert document is not None and document.count(b"\n") > 5
    assert snapshot.value("/meta-data/security-groups") is not None
    assert b"\n" in (snapshot.value("/meta-data/security-groups") or b"")
    role = snapshot.children("/meta-data/iam/security-credentials/")
    assert role and b"SecretAccessKey" in (snapshot.value(role[0]) or b"")


def test_public_keys_listing_names_subdirectories(emulator: Emulator) -> None:
    snapshot = fetch_keys(emulator, ["/meta-data/public-keys/"])
    assert snapshot.children("/meta-data/public-keys/") == ("/meta-data/public-keys/0/",)
    key = snapshot.value("/meta-data/public-keys/0/openssh-key")
    assert key is not None and key.startswith(b"ssh-")


def test_tag_keys_with_equals_are_plain_names(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({"/meta-data/tags/instance/team=core": "yes",
                                        "/meta-data/tags/instance/Name": "web"}))
    snapshot = fetch_keys(emulator, ["/meta-data/tags/instance/"])
    assert snapshot.value("/meta-data/tags/instance/team=core") == b"yes"
    assert "/meta-data/tags/instance/team/" not in snapshot.listings


def test_empty_value_is_the_empty_string_not_missing(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({"/meta-data/tags/instance/Empty": ""}))
    snapshot = fetch_keys(emulator, ["/meta-data/tags/instance/Empty"])
    assert snapshot.value("/meta-data/tags/instance/Empty") == b""
    assert snapshot.exists("/meta-data/tags/instance/Empty")


def test_empty_directory(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({"/meta-data/tags/instance/": ""}))
    snapshot = fetch_keys(emulator, ["/meta-data/tags/instance/"])
    assert snapshot.children("/meta-data/tags/instance/") == ()


def test_listed_child_that_404s_is_missing_only(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({"/meta-data/tags/instance/A": "1",
                                        "/meta-data/tags/instance/B": "2"}))
    emulator.add_fault("/latest/meta-data/tags/instance/B", status=404)
    snapshot = fetch_keys(emulator, ["/meta-data/tags/instance/"])
    assert snapshot.value("/meta-data/tags/instance/A") == b"1"
    assert snapshot.value("/meta-data/tags/instance/B") is None
    assert snapshot.errors == {}


def test_hostile_entries_are_skipped_and_never_requested(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({"/meta-data/d/ok": "1"}))
    emulator.add_fault("/latest/meta-data/d/", body=b"ok\n..\n../../api/token\nx?y\n%2e%2e\n")
    snapshot = fetch_keys(emulator, ["/meta-data/d/"])
    assert snapshot.children("/meta-data/d/") == ("/meta-data/d/ok",)
    paths = {r.path for r in emulator.requests}
    assert paths == {"/latest/api/token", "/latest/meta-data/d/", "/latest/meta-data/d/ok"}


def test_binary_user_data_is_kept_raw(make_emulator: Make) -> None:
    raw = bytes(range(256)) + b"\x1f\x8b gzip?"
    emulator = make_emulator(data=tree({"/user-data": raw}))
    assert fetch_keys(emulator, ["/user-data"]).value("/user-data") == raw


def test_absent_user_data_is_missing_not_an_error(emulator: Emulator) -> None:
    emulator.set_value("/user-data", None)
    snapshot = fetch_keys(emulator, ["/user-data"])
    assert snapshot.value("/user-data") is None
    assert snapshot.errors == {}


def test_deep_tree_walks_to_the_leaves_and_depth_is_capped(make_emulator: Make) -> None:
    deep = "/meta-data/" + "/".join(f"l{i}" for i in range(10)) + "/leaf"
    emulator = make_emulator(data=tree({deep: "bottom"}))
    assert fetch_keys(emulator, ["/meta-data/l0/"]).value(deep) == b"bottom"
    capped = fetch_keys(emulator, ["/meta-data/l0/"], max_depth=6)
    with pytest.raises(FetchFailed, match="6-level directory cap"):
        capped.value(deep)


def test_body_cap_names_the_path(make_emulator: Make) -> None:
    emulator = make_emulator(data=tree({"/meta-data/big": "x" * 5000}))
    snapshot = fetch_keys(emulator, ["/meta-data/big", "/meta-data/instance-id"],
                          max_leaf_bytes=4096)
    assert snapshot.value("/meta-data/instance-id") == b"i-1"
    assert "4096-byte cap" in snapshot.errors["/meta-data/big"]


def test_300_entry_listing_each_path_once(make_emulator: Make) -> None:
    tags = {f"/meta-data/tags/instance/tag{i:03d}": f"v{i}" for i in range(300)}
    emulator = make_emulator(data=tree(dict(tags)))  # type: ignore[arg-type]
    snapshot = fetch_keys(emulator, ["/meta-data/tags/instance/"])
    assert {p: v.decode() for p, v in snapshot.values.items()} == tags
    assert emulator.count("PUT") == 1
    assert emulator.count("GET") == 301  # one listing + 300 leaves
    assert len({r.path for r in emulator.requests}) == 302


def test_twenty_keys_are_fetched_concurrently(make_emulator: Make) -> None:
    leaves = {f"/meta-data/k{i}": "v" for i in range(20)}
    emulator = make_emulator(data=dict(leaves), latency_ms=20)
    fetch_keys(emulator, leaves)
    assert emulator.max_in_flight > 1
    assert emulator.count("GET") == 20 and emulator.count("PUT") == 1


def test_botocore_accepts_the_emulator(emulator: Emulator) -> None:
    """A client nobody here wrote: botocore's own IMDS fetchers.

    botocore maps AWS_EC2_METADATA_SERVICE_ENDPOINT to the config key
    ``ec2_metadata_service_endpoint``; the fetchers take it only through
    ``config``, so it is passed that way, and the chosen base URL is checked
    to be loopback before any request is made.
    """
    botocore_utils = pytest.importorskip("botocore.utils")
    config = {"ec2_metadata_service_endpoint": emulator.url + "/"}
    fetchers = [cls(timeout=2, num_attempts=1, config=config, env={})
                for cls in (botocore_utils.InstanceMetadataRegionFetcher,
                            botocore_utils.InstanceMetadataFetcher)]
    for fetcher in fetchers:
        assert fetcher._base_url.startswith("http://127.0.0.1:")
    region_fetcher, creds_fetcher = fetchers
    assert region_fetcher.retrieve_region() == "us-east-1"
    creds = creds_fetcher.retrieve_iam_role_credentials()
    assert creds["role_name"] == "web-role"
    assert creds["access_key"].startswith("ASIA")
    assert creds["secret_key"] and creds["token"]
    assert emulator.count("PUT") >= 2  # botocore used IMDSv2
    assert all(r.header("X-aws-ec2-metadata-token") for r in emulator.requests
               if r.method == "GET")


def test_base64_fixture_values_round_trip(make_emulator: Make) -> None:
    raw = base64.b64decode("H4sIAAAAAAAAA+3BAQ0AAADCoPdPbQ8HFAAAAAAAAAAAAAAAAAA=")
    emulator = make_emulator(data=tree({"/user-data": raw}))
    assert fetch_keys(emulator, ["/user-data"]).value("/user-data") == raw
