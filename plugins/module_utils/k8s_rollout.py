# -*- coding: utf-8 -*-
# Copyright: agentops.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts of the Kubernetes method's release flow, from what the API returns.

Kubernetes reports a stalled rollout only after progressDeadlineSeconds and
never undoes one; the method judges the pods itself, so that an image that
cannot be pulled or a container that crashes fails the release at once, with
the reason the kubelet gives.
"""

from __future__ import annotations

from ansible_collections.agentops.deploy.plugins.module_utils import prometheus_text

RELEASE_LABEL = 'agentops.deploy/release'

# Waiting reasons no wait mends: the release has failed as soon as one shows.
FATAL_WAITING = frozenset((
    'ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull',
    'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError', 'CrashLoopBackOff',
))

# Messages of those reasons that the kubelet mends itself on its next sync:
# its cache of a ConfigMap or Secret the pod reads (a new one for each
# release) had not caught up with the API yet, or the runtime was slow to
# answer. Seen on a busy node: "failed to sync configmap cache: timed out
# waiting for the condition"; the container started seconds later.
TRANSIENT_MESSAGES = ('failed to sync configmap cache', 'failed to sync secret cache', 'context deadline exceeded')

# What the bake leaves out of the error ratio: the kubelet's probes.
PROBE_ROUTES = ('/ready', '/health', '/metrics')


def _ready(pod: dict) -> bool:
    conditions = (pod.get('status') or {}).get('conditions') or []
    return any(c.get('type') == 'Ready' and c.get('status') == 'True' for c in conditions)


def _release(pod: dict) -> str:
    return ((pod.get('metadata') or {}).get('labels') or {}).get(RELEASE_LABEL, '')


def _terminating(pod: dict) -> bool:
    return bool((pod.get('metadata') or {}).get('deletionTimestamp'))


def _container_problem(pod: dict) -> tuple[str, int] | None:
    """(reason, restarts) when a container of the pod shows a failure no wait mends."""
    statuses = (pod.get('status') or {}).get('containerStatuses') or []
    for status in statuses:
        restarts = int(status.get('restartCount') or 0)
        state = status.get('state') or {}
        waiting = state.get('waiting') or {}
        # How the container ended says more than the back-off that follows (CrashLoopBackOff).
        terminated = state.get('terminated') or (status.get('lastState') or {}).get('terminated')
        if terminated and (restarts > 0 or state.get('terminated')):
            reason = terminated.get('reason') or 'Terminated'
            return f"the container exited ({reason}, exit code {terminated.get('exitCode', '?')})", restarts
        message = (waiting.get('message') or '').strip()
        if waiting.get('reason') in FATAL_WAITING and not any(part in message for part in TRANSIENT_MESSAGES):
            return (f"{waiting['reason']}: {message}" if message else waiting['reason']), restarts
    return None


def rollout_state(pods: list[dict], release: str, replicas: int) -> dict:
    """Where the rollout of `release` stands, from the Deployment's pods.

    state is `complete` when `replicas` pods of the release are ready and every
    pod of another release is gone or terminating (endpoints drop a pod when
    its deletion starts; it may finish its requests for as long as its grace
    period lasts), `failed` when a pod of the release
    shows a failure no wait mends (reason, pod, restarts say which), and
    `progressing` otherwise: a pod waiting on what the kubelet mends itself
    (TRANSIENT_MESSAGES) fails only at the health deadline, as any pod that
    is not ready.
    """
    current = [pod for pod in pods if _release(pod) == release and not _terminating(pod)]
    others = [pod for pod in pods if _release(pod) != release and not _terminating(pod)]
    ready = [pod for pod in current if _ready(pod)]
    state = {
        'state': 'progressing', 'reason': '', 'pod': '', 'restarts': 0,
        'ready': len(ready), 'desired': int(replicas), 'pods': sorted(p['metadata']['name'] for p in current),
        'ready_pods': sorted(p['metadata']['name'] for p in ready), 'others': len(others),
    }
    for pod in sorted(current, key=lambda p: p['metadata']['name']):
        problem = _container_problem(pod)
        if problem:
            state.update(state='failed', reason=problem[0], pod=pod['metadata']['name'], restarts=problem[1])
            return state
    if len(ready) >= int(replicas) and not others:
        state['state'] = 'complete'
    elif len(ready) < int(replicas) and current:
        waiting = sorted(current, key=lambda p: (_ready(p), p['metadata']['name']))[0]
        state['pod'] = waiting['metadata']['name']
        state['reason'] = _not_ready_reason(waiting)
    elif others:
        state['reason'] = f"{len(others)} pod(s) of the previous release still serving"
    return state


def _not_ready_reason(pod: dict) -> str:
    status = pod.get('status') or {}
    for condition in status.get('conditions') or []:
        if condition.get('type') == 'PodScheduled' and condition.get('status') == 'False':
            return f"not scheduled: {condition.get('message') or condition.get('reason') or 'unknown'}"
    for container in status.get('containerStatuses') or []:
        waiting = (container.get('state') or {}).get('waiting')
        if waiting:
            return f"waiting: {waiting.get('reason', '')} {waiting.get('message', '')}".strip()
        if not container.get('ready'):
            return 'running, not ready'
    return status.get('phase') or 'pending'


def bake_verdict(metrics_texts: list[str], max_error_ratio: float) -> dict:
    """The metrics gate over every pod's /metrics: the share of 5xx of the agent's own requests."""
    total = errors = 0.0
    for text in metrics_texts:
        pod_total, pod_errors = prometheus_text.request_counts(prometheus_text.parse(text), ignore_routes=PROBE_ROUTES)
        total += pod_total
        errors += pod_errors
    ratio = errors / total if total else 0.0
    return {'requests': int(total), 'errors': int(errors), 'ratio': round(ratio, 4), 'passed': ratio <= float(max_error_ratio)}


def release_template(replicasets: list[dict], release: str) -> dict:
    """The pod template of `release` from the Deployment's ReplicaSets, as the Deployment should hold it again.

    The ReplicaSet controller's own pod-template-hash label is left out: the
    Deployment controller adds it to the ReplicaSet it finds or makes.
    """
    for replicaset in replicasets:
        template = (replicaset.get('spec') or {}).get('template') or {}
        labels = dict((template.get('metadata') or {}).get('labels') or {})
        if labels.get(RELEASE_LABEL) == release:
            labels.pop('pod-template-hash', None)
            return {**template, 'metadata': {**template['metadata'], 'labels': labels}}
    return {}
