"""The lambda_agent ledger kept on a function: its tags, versions and alias."""
from __future__ import annotations

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils import lambda_ledger as ll

HEALTHY, FAILED = "agentops.deploy/healthy", "agentops.deploy/failed"


def info(tags: dict | None = None, aliases: list | None = None, versions: list | None = None) -> dict:
    """amazon.aws.lambda_info's answer (query all) for one function."""
    return {"functions": [{"function_name": "smart-agent", "function_arn": "arn:aws:lambda:eu-west-1:1:function:smart-agent",
                           "tags": tags or {}, "aliases": aliases or [], "versions": versions or []}]}


def test_the_ledger_of_a_function_names_what_serves_and_what_passed() -> None:
    current = ll.ledger(info({HEALTHY: "1=1.0.0 3=1.1.0", FAILED: "2=1.1.0-crash"},
                             [{"name": "live", "function_version": "3"}, {"name": "beta", "function_version": "2"}],
                             [{"version": "$LATEST"}, {"version": "1"}, {"version": "3"}]), "live", HEALTHY, FAILED)
    assert current["exists"] and current["live"] == "3" and current["live_app_version"] == "1.1.0"
    assert current["healthy"] == [{"version": "1", "app_version": "1.0.0"}, {"version": "3", "app_version": "1.1.0"}]
    assert current["failed"] == "2=1.1.0-crash"
    assert [entry["version"] for entry in current["versions"]] == ["1", "3"]


@pytest.mark.parametrize("answer", [{}, {"failed": True}, {"functions": [{"function": {}}]}])
def test_an_absent_function_has_an_empty_ledger(answer: dict) -> None:
    current = ll.ledger(answer, "live", HEALTHY, FAILED)
    assert not current["exists"] and current["live"] == "" and current["healthy"] == []


def test_a_malformed_tag_entry_is_skipped_not_trusted() -> None:
    assert ll.parse_healthy("1=1.0.0 x=2.0 3= =4 5=1.1.0") == [
        {"version": "1", "app_version": "1.0.0"}, {"version": "5", "app_version": "1.1.0"}]


def test_recording_keeps_the_last_releases_and_the_live_one_last() -> None:
    value = ""
    for version in range(1, 8):
        value = ll.record_healthy(value, str(version), f"1.{version}.0", keep=3)
    assert value == "5=1.5.0 6=1.6.0 7=1.7.0"
    # A version recorded again (a rollback to it, then a deploy) moves to the end, once.
    assert ll.record_healthy(value, "5", "1.5.0", keep=3) == "6=1.6.0 7=1.7.0 5=1.5.0"


def test_the_tag_stays_within_lambdas_limit_and_keeps_the_live_version() -> None:
    entries = [{"version": str(number), "app_version": "1.0.0-" + "x" * 40} for number in range(1, 11)]
    value = ll.format_healthy(entries, keep=10, live="10")
    assert len(value) <= ll.TAG_VALUE_MAX and value.endswith("10=1.0.0-" + "x" * 40)
    with pytest.raises(ValueError, match="a character a Lambda tag cannot"):
        ll.format_healthy([{"version": "1", "app_version": "1.0.0#bad"}], keep=1)


def test_the_version_of_a_release_is_the_newest_holding_it_and_its_code() -> None:
    versions = [{"version": "$LATEST", "description": "agentops.deploy 1.0.0 r-aaa", "code_sha256": "A"},
                {"version": "2", "description": "agentops.deploy 1.0.0 r-aaa", "code_sha256": "A"},
                {"version": "4", "description": "agentops.deploy 1.0.0 r-aaa", "code_sha256": "B"},
                {"version": "10", "description": "agentops.deploy 1.0.0 r-aaa", "code_sha256": "A"},
                {"version": "11", "description": "agentops.deploy 1.0.0 r-aaab", "code_sha256": "A"}]
    assert ll.version_of_release(versions, "r-aaa", "A") == "10"
    assert ll.version_of_release(versions, "r-aaa", "B") == "4"
    assert ll.version_of_release(versions, "r-bbb") == ""


def test_a_rollback_goes_one_healthy_release_back_or_where_it_is_told() -> None:
    current = {"live": "5", "healthy": ll.parse_healthy("1=1.0.0 3=1.1.0 5=1.2.0")}
    assert ll.rollback_target(current)["version"] == "3"
    assert ll.rollback_target(current, "1.0.0") == {"failed": False, "msg": "", "version": "1", "app_version": "1.0.0"}
    assert ll.rollback_target(current, "3")["app_version"] == "1.1.0"
    refused = ll.rollback_target(current, "0.9.0")
    assert refused["failed"] and refused["msg"] == (
        "0.9.0 is not a release this function keeps as healthy; it keeps 1.0.0 (version 1), 1.1.0 (version 3), "
        "1.2.0 (version 5)")


def test_a_rollback_with_nothing_before_the_serving_version_is_refused() -> None:
    alone = ll.rollback_target({"live": "1", "healthy": ll.parse_healthy("1=1.0.0")})
    assert alone["failed"] and "no healthy release before the serving one (1) to return to" in alone["msg"]
    # 1.0.0 deployed again after 1.1.0 is the same version, recorded last: one step back is 1.1.0.
    again = ll.rollback_target({"live": "1", "healthy": ll.parse_healthy("3=1.1.0 1=1.0.0")})
    assert again["failed"] is False and again["version"] == "3"
