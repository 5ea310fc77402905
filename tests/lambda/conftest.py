"""AWS Lambda, as moto server plays it, with the functions really run in Docker.

AWS itself cannot be reached from here. moto server (PyPI moto[server])
answers the Lambda, IAM, STS and Secrets Manager APIs on a local port, and
runs each invocation of a function in a container of a locally built Lambda
Python image (scripts/lambda-runtime-image.sh: Debian 13's python3.13, boto3,
and a runtime shim; no registry is reachable). What moto cannot show is said
where a test meets it, and in docs/lambda.md.

One moto per test: each test starts from an empty account, and what one
test's failed invocations leave in moto cannot reach the next.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# moto accepts any credentials; boto3 (in the modules, the tests and the
# function) only needs some.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="session")
def runtime_image() -> str:
    """The Lambda runtime image moto runs functions in (built once per change of its recipe)."""
    built = subprocess.run(["bash", str(ROOT / "scripts" / "lambda-runtime-image.sh")], capture_output=True, text=True,
                           check=True, timeout=1800)
    return built.stdout.strip()


@pytest.fixture(scope="session")
def wheelhouse_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty wheelhouse cache for the session: the first run (in check mode) fills it, as on a new controller."""
    return tmp_path_factory.mktemp("wheelhouse")


def _bridge_gateway() -> str:
    """The address of Docker's default bridge on this machine: what a function's container reaches it at.

    dockerd states the gateway in the bridge's IPAM config only when it chose
    it; started where its bridge interface already had an address, it leaves
    it out (seen here). host.docker.internal (host-gateway) is that
    interface's address either way, so that is the fallback.
    """
    found = subprocess.run(["docker", "network", "inspect", "bridge", "-f",
                            '{{range .IPAM.Config}}{{.Gateway}}{{end}} '
                            '{{index .Options "com.docker.network.bridge.name"}}'],
                           capture_output=True, text=True, check=True)
    gateway, _space, interface = found.stdout.strip().rpartition(" ")
    if gateway.strip():
        return gateway.strip()
    interface = interface if interface and not interface.startswith("<") else "docker0"
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", interface],
                           capture_output=True, text=True, check=True)
    addresses = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", shown.stdout)
    assert addresses, f"no IPv4 address on Docker's bridge {interface}: {shown.stdout!r}"
    return addresses[0]


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _volumes() -> set[str]:
    listed = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


@pytest.fixture
def moto(runtime_image: str, wheelhouse_cache: Path, tmp_path: Path) -> Iterator[dict]:
    """A fresh moto server; yields its endpoint, boto3 clients on it and the session's wheelhouse cache."""
    # moto tells the function to call it back at host.docker.internal, the
    # bridge's gateway: it listens there (not on every interface), and the
    # controller's modules use that address too.
    address = _bridge_gateway()
    port = _free_port(address)
    volumes_before = _volumes()
    log = open(tmp_path / "moto.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    server = subprocess.Popen(  # noqa: S603
        [str(ROOT / ".venv" / "bin" / "moto_server"), "-H", address, "-p", str(port)],
        # AWS managed policies (AWSLambdaBasicExecutionRole) exist in moto only when loaded.
        env={**os.environ, **AWS_ENV, "MOTO_DOCKER_LAMBDA_IMAGE": runtime_image, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
        stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://{address}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"moto did not start: {(tmp_path / 'moto.log').read_text()}") from None
                time.sleep(0.2)

        def client(service: str):
            return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                                aws_access_key_id="testing", aws_secret_access_key="testing")

        yield {"endpoint": endpoint, "client": client, "log": tmp_path / "moto.log", "wheelhouse_cache": wheelhouse_cache}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        # The code volumes moto fills for each invocation, should one be left.
        for volume in _volumes() - volumes_before:
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)
