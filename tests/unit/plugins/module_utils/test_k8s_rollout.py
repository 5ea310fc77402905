"""k8s_rollout: where a rollout stands from the pods, and the bake's metrics gate."""
from __future__ import annotations

import pytest

from ansible_collections.agentops.deploy.plugins.module_utils.k8s_rollout import bake_verdict, release_template, rollout_state

NEW, OLD = "r-new", "r-old"


def pod(name: str, release: str, ready: bool = True, restarts: int = 0, waiting: str = "", terminated: dict | None = None,
        deleting: bool = False, scheduled: bool = True) -> dict:
    state: dict = {"running": {}} if not waiting and not terminated else {}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": f"{waiting} happened"}}
    status = {"name": "agent", "ready": ready, "restartCount": restarts, "state": state}
    if terminated:
        status["lastState"] = {"terminated": terminated}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if not scheduled:
        conditions.append({"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available: 1 Insufficient cpu."})
    metadata: dict = {"name": name, "labels": {"agentops.deploy/release": release}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-04T07:00:00Z"
    return {"metadata": metadata, "status": {"phase": "Running", "conditions": conditions, "containerStatuses": [status]}}


def test_complete_when_every_pod_of_the_release_is_ready_and_no_other_release_is_left() -> None:
    state = rollout_state([pod("a", NEW), pod("b", NEW)], NEW, 2)
    assert state["state"] == "complete" and state["ready_pods"] == ["a", "b"]
    # A terminating pod of the old release is out of the Service's endpoints; it only finishes its requests.
    assert rollout_state([pod("a", NEW), pod("b", NEW), pod("c", OLD, deleting=True)], NEW, 2)["state"] == "complete"
    serving_old = rollout_state([pod("a", NEW), pod("b", NEW), pod("c", OLD)], NEW, 2)
    assert serving_old["reason"] == "1 pod(s) of the previous release still serving"
    # A terminating pod of the release itself (a replaced one) does not count toward it.
    assert rollout_state([pod("a", NEW), pod("b", NEW, deleting=True)], NEW, 2)["ready"] == 1


def test_progressing_while_an_old_pod_still_serves_or_too_few_are_ready() -> None:
    assert rollout_state([pod("a", NEW), pod("b", NEW), pod("c", OLD)], NEW, 2)["state"] == "progressing"
    state = rollout_state([pod("a", NEW), pod("b", NEW, ready=False), pod("c", OLD)], NEW, 2)
    assert (state["state"], state["pod"], state["reason"]) == ("progressing", "b", "running, not ready")
    # An old release's pods never count toward the new one.
    assert rollout_state([pod("c", OLD), pod("d", OLD)], NEW, 2)["ready"] == 0


@pytest.mark.parametrize("waiting", ["ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "CreateContainerConfigError"])
def test_a_waiting_reason_no_wait_mends_fails_at_once(waiting: str) -> None:
    state = rollout_state([pod("a", NEW, ready=False, waiting=waiting), pod("c", OLD)], NEW, 2)
    assert (state["state"], state["pod"]) == ("failed", "a")
    assert state["reason"] == f"{waiting}: {waiting} happened"


@pytest.mark.parametrize("waiting, message", [
    ("CreateContainerConfigError", "failed to sync configmap cache: timed out waiting for the condition"),
    ("CreateContainerConfigError", "failed to sync secret cache: timed out waiting for the condition"),
    ("CreateContainerError", "context deadline exceeded"),
])
def test_a_reason_the_kubelet_mends_on_its_next_sync_is_progress_until_the_deadline(waiting: str, message: str) -> None:
    """Seen on the test node: a release rolled back for its new ConfigMap's cache, whose pod started seconds later."""
    slow = pod("a", NEW, ready=False, waiting=waiting)
    slow["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = message
    state = rollout_state([slow, pod("c", OLD)], NEW, 2)
    assert (state["state"], state["pod"]) == ("progressing", "a")
    assert state["reason"] == f"waiting: {waiting} {message}"
    # What no sync mends, under the same reason, still fails at once.
    slow["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = 'configmap "agent-r-1" not found'
    assert rollout_state([slow, pod("c", OLD)], NEW, 2)["state"] == "failed"


def test_a_container_that_exited_and_restarted_fails_with_its_exit_code() -> None:
    crashed = pod("a", NEW, ready=False, restarts=1, terminated={"reason": "Error", "exitCode": 1})
    state = rollout_state([crashed, pod("c", OLD)], NEW, 2)
    assert state["state"] == "failed" and state["restarts"] == 1
    assert state["reason"] == "the container exited (Error, exit code 1)"
    # Backing off after the crash: still the exit, not the back-off, leads.
    backing_off = pod("a", NEW, ready=False, restarts=2, waiting="CrashLoopBackOff", terminated={"reason": "Error", "exitCode": 3})
    assert rollout_state([backing_off], NEW, 1)["reason"] == "the container exited (Error, exit code 3)"


def test_waiting_to_start_or_to_be_scheduled_is_progress_not_failure() -> None:
    assert rollout_state([pod("a", NEW, ready=False, waiting="ContainerCreating")], NEW, 1)["state"] == "progressing"
    state = rollout_state([pod("a", NEW, ready=False, scheduled=False)], NEW, 1)
    assert state["state"] == "progressing" and state["reason"].startswith("not scheduled: 0/1 nodes are available")


def test_a_pod_of_an_old_release_crashing_does_not_fail_the_new_one() -> None:
    old = pod("c", OLD, ready=False, restarts=3, terminated={"reason": "Error", "exitCode": 1})
    assert rollout_state([pod("a", NEW), old], NEW, 1)["state"] == "progressing"


METRICS = """# HELP http_requests_total HTTP requests
http_requests_total{route="/api/agent",method="POST",status="200"} %d
http_requests_total{route="/api/agent",method="POST",status="500"} %d
http_requests_total{route="/ready",method="GET",status="503"} 40
"""


def test_the_bake_adds_every_pod_and_leaves_out_the_probes() -> None:
    verdict = bake_verdict([METRICS % (95, 5), METRICS % (100, 0)], 0.05)
    assert verdict == {"requests": 200, "errors": 5, "ratio": 0.025, "passed": True}


def test_the_bake_fails_above_the_ratio_and_passes_without_traffic() -> None:
    assert bake_verdict([METRICS % (9, 1)], 0.05)["passed"] is False
    assert bake_verdict([], 0.05) == {"requests": 0, "errors": 0, "ratio": 0.0, "passed": True}


def test_the_release_template_comes_without_the_replicaset_controllers_label() -> None:
    template = {"metadata": {"labels": {"app": "a", "agentops.deploy/release": OLD, "pod-template-hash": "abc"}}, "spec": {"x": 1}}
    other = {"metadata": {"labels": {"agentops.deploy/release": NEW}}, "spec": {"x": 2}}
    replicasets = [{"spec": {"template": other}}, {"spec": {"template": template}}]
    assert release_template(replicasets, OLD) == {"metadata": {"labels": {"app": "a", "agentops.deploy/release": OLD}}, "spec": {"x": 1}}
    assert template["metadata"]["labels"]["pod-template-hash"] == "abc"  # the listing itself is left alone
    assert release_template(replicasets, "r-gone") == {}
