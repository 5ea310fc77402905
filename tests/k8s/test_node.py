"""The single-node Kubernetes the Kubernetes method's tests run on (scripts/k8s-node.sh), really running.

Kubernetes 1.20 built from Debian's source package (scripts/k8s-binaries.sh,
cached by its inputs), etcd, containerd and runc, in a private network and
mount namespace. These tests prove what the method's tests will rely on: the
node gets Ready, a Deployment rolls out, its Service answers through
kube-proxy from inside the cluster (no network path from the controller to
pods is assumed), exec and logs reach the pods through the kubelet, and
nothing of the cluster's network shows on the host.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from conftest import host_cni_files, node

NAMESPACE = "harness"


def kubectl(*args: str, stdin: str | None = None) -> str:
    return node("exec", "kubectl", "-n", NAMESPACE, *args, stdin=stdin).stdout


@pytest.fixture(scope="module")
def harness(cluster: dict) -> dict:
    node("exec", "kubectl", "create", "namespace", NAMESPACE)
    return cluster


WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: web
          image: agentops/pause:1
          imagePullPolicy: Never
          command: ["/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo serving && exec busybox httpd -f -p 8080 -h /www"]
          readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  automountServiceAccountToken: false
  containers:
    - {name: client, image: "agentops/pause:1", imagePullPolicy: Never}
"""


def test_a_deployment_rolls_out_and_its_service_answers_inside_the_cluster(harness: dict) -> None:
    nodes = json.loads(node("exec", "kubectl", "get", "nodes", "-o", "json").stdout)["items"]
    assert [n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes] == ["v1.20.2"]

    kubectl("apply", "-f", "-", stdin=WEB)
    kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=90s")
    pods = set(kubectl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}").split())
    assert len(pods) == 2, pods

    # Through the Service's cluster IP, from a pod: kube-proxy spreads the requests over both.
    service = kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
    # kube-proxy programs the Service a moment after its endpoints are ready: wait for the first answer,
    # inside the pod, with one exec. (busybox's wget crashes in these pods; its nc does not.)
    get = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {service} 80"
    kubectl("exec", "client", "--", "sh", "-c",
            f"i=0; while [ $i -lt 60 ]; do {get} | grep -q '200 OK' && exit 0; sleep 0.5; i=$((i + 1)); done; exit 1")
    answers = [kubectl("exec", "client", "--", "sh", "-c", get).strip().splitlines()[-1] for _request in range(16)]
    assert set(answers) == pods, answers
    # The kubelet serves logs (the apiserver reaches it by the node's InternalIP).
    for pod in pods:
        assert "serving" in kubectl("logs", pod)


def test_the_cluster_network_stays_off_the_host(cluster: dict) -> None:
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "cni0" not in host_links and "k8snode0" not in host_links
    host_rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert "KUBE-SERVICES" not in host_rules
    # The CNI plugins' state is the node's: no address or result of a pod lands in the host's /var/lib/cni.
    assert host_cni_files() == cluster["host_cni_before"]
    # ... while the node's own namespace has them.
    node_rules = node("exec", "iptables-save").stdout
    assert "KUBE-SERVICES" in node_rules
