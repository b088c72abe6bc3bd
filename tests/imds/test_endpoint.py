"""Endpoint resolution: precedence, and which place the value came from."""

from __future__ import annotations

import pytest

from imdsrender.imds.endpoint import (
    ImdsConfigError,
    locate_endpoint,
    metadata_disabled,
    resolve_endpoint,
)
from imdsrender.imds.wire import IPV4_ENDPOINT, IPV6_ENDPOINT
from imdsrender.model import ImdsSettings


def test_endpoint_precedence() -> None:
    settings = ImdsSettings(endpoint="http://file:1")
    env = {"IMDS_ENDPOINT": "http://imds:2", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://aws:3"}
    assert resolve_endpoint(settings, "http://flag:0/", env) == "http://flag:0"
    assert resolve_endpoint(settings, None, env) == "http://imds:2"
    del env["IMDS_ENDPOINT"]
    assert resolve_endpoint(settings, None, env) == "http://aws:3"
    assert resolve_endpoint(settings, None, {}) == "http://file:1"
    assert resolve_endpoint(ImdsSettings(), None, {}) == IPV4_ENDPOINT
    assert resolve_endpoint(ImdsSettings(endpoint_mode="ipv6"), None, {}) == IPV6_ENDPOINT
    assert resolve_endpoint(ImdsSettings(), None,
                            {"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}) == IPV6_ENDPOINT


def test_endpoint_names_where_it_came_from() -> None:
    env = {"IMDS_ENDPOINT": "http://imds:2/"}
    assert locate_endpoint(ImdsSettings(), "http://flag:0", env).origin == "--endpoint"
    assert locate_endpoint(ImdsSettings(), None, env).origin == "IMDS_ENDPOINT"
    in_file = ImdsSettings(endpoint="http://file:1")
    assert locate_endpoint(in_file, None, {}).origin == "imds.endpoint"
    mode = {"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "ipv6"}
    found = locate_endpoint(ImdsSettings(), None, mode)
    assert (found.url, found.origin) == (IPV6_ENDPOINT, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
    found = locate_endpoint(ImdsSettings(), None, {})
    assert (found.url, found.origin) == (IPV4_ENDPOINT, "imds.endpoint_mode")


def test_unknown_mode_names_the_variable_that_set_it() -> None:
    with pytest.raises(ImdsConfigError) as info:
        resolve_endpoint(ImdsSettings(), None, {"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "ipv5"})
    assert str(info.value) == ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: unknown endpoint mode "
                               "'ipv5'; use ipv4 or ipv6")
    assert info.value.exit_code == 2


def test_the_sdk_endpoint_variable_is_named_as_the_origin() -> None:
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://sdk:0/"}
    found = locate_endpoint(ImdsSettings(endpoint="http://file:0"), None, env)
    assert (found.url, found.origin) == ("http://sdk:0", "AWS_EC2_METADATA_SERVICE_ENDPOINT")


@pytest.mark.parametrize("value, disabled", [
    ("true", True), (" TRUE\n", True), ("True", True),
    ("", False), ("false", False), ("1", False), ("truex", False),
])
def test_the_sdks_off_switch_reads_true_in_any_case_and_spacing(value: str,
                                                                disabled: bool) -> None:
    assert metadata_disabled({"AWS_EC2_METADATA_DISABLED": value}) is disabled
    assert metadata_disabled({}) is False
