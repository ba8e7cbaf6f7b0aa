"""The whole stack as an operator runs it: `univence up` (each service its own process, real gRPC),
keys made with the `univence accounts` CLI, the official openai SDK against the edge, reflection and
health on every service, and the supervisor restarting a service that dies.

The stack runs on moved ports set only as each service's own port (`UNIVENCE_<NAME>_PORT`): the edge
and the CLI find them without address settings. Its data folder is UNIVENCE_HOME, and the CLI runs in
another directory with no flags: it finds the accounts service and its generated admin token."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.support.ports import free_port
from univence import registry
from univence.accounts.v1 import accounts_pb2, accounts_pb2_grpc
from univence.cli.services import available_modalities

RUNNING = ["accounts", "media", *available_modalities()]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ["edge", "edge_metrics", *RUNNING, *(f"{n}_metrics" for n in RUNNING)]}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "UNIVENCE_EDGE_PORT": str(ports["edge"]),
           "UNIVENCE_EDGE_METRICS_PORT": str(ports["edge_metrics"]), "UNIVENCE_HOME": str(workdir / "home")}
    env.pop("UNIVENCE_CONFIG", None)
    for name in RUNNING:
        env[f"UNIVENCE_{name.upper()}_PORT"] = str(ports[name])
        env[f"UNIVENCE_{name.upper()}_METRICS_PORT"] = str(ports[f"{name}_metrics"])
    log = (workdir / "up.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "univence.cli", "up", "--drain-seconds", "3"],
                               cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{ports['edge']}"
    try:
        wait_ready(base_url, process, workdir)
        yield {"base_url": base_url, "ports": ports, "env": env, "workdir": workdir, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_ready(base_url: str, process: subprocess.Popen, workdir: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"univence up exited:\n{(workdir / 'up.log').read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the stack was not ready in {timeout}s:\n{(workdir / 'up.log').read_text()}")


def univence(stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator on the stack's machine runs it, in a directory of its own, with no flags."""
    elsewhere = stack["workdir"] / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "univence.cli", *args], capture_output=True, text=True,
                          timeout=60, env=stack["env"], cwd=elsewhere)


def cli(stack, *args: str) -> dict:
    done = univence(stack, "accounts", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_stack_is_closed_and_keeps_its_data_in_one_folder(stack):
    home = stack["workdir"] / "home"
    assert f"data folder: {home}" in (stack["workdir"] / "up.log").read_text()
    with grpc.insecure_channel(f"127.0.0.1:{stack['ports']['accounts']}") as channel:
        with pytest.raises(grpc.RpcError) as refused:
            accounts_pb2_grpc.AccountsServiceStub(channel).ListUsers(accounts_pb2.ListUsersRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert {"accounts.db", "admin-token", "media"} <= {p.name for p in home.iterdir()}

    def answers(status: int) -> bool:  # the edge looks at the flag once a second
        deadline = time.monotonic() + 5
        while httpx.get(f"{stack['base_url']}/v1/models").status_code != status:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    assert univence(stack, "maintenance", "on").returncode == 0
    try:
        assert answers(503)
    finally:
        assert univence(stack, "maintenance", "off").returncode == 0
    assert answers(401)


def test_operator_creates_a_key_and_the_openai_sdk_uses_it(stack):
    user = cli(stack, "create-user", "ops@example.com")
    assert user["user_id"].startswith("usr_") and user["premium"] is False
    key = cli(stack, "create-key", "ops@example.com", "--name", "laptop")
    secret = key["secret"]
    assert secret.startswith("sk-")
    client = openai.OpenAI(api_key=secret, base_url=f"{stack['base_url']}/v1", max_retries=0)
    for name in RUNNING:
        wait_serving(stack, name)
    expected = {"image": "z-image-turbo", "llm": "Qwen/Qwen3.5-4B"}
    wanted = {expected[n] for n in RUNNING if n in expected}
    deadline = time.monotonic() + 20  # the edge caches the list for 5 s
    while True:
        models = {m.id: m.model_dump() for m in client.models.list().data}
        if wanted <= set(models) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for name in RUNNING:
        if name in expected:  # each modality service's models, in the profile `univence up` chose here
            assert models[expected[name]]["service"] == name and models[expected[name]]["profile"] == "tiny"

    wrong = openai.OpenAI(api_key="sk-wrong", base_url=f"{stack['base_url']}/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as failed:
        wrong.models.list()
    assert failed.value.status_code == 401 and failed.value.body["type"] == "authentication_error"

    response = httpx.get(f"{stack['base_url']}/v1/not-a-route", headers={"X-API-Key": secret})
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_cli_manages_premium_credits_ledger_and_revocation(stack):
    cli(stack, "create-user", "buyer@example.com")
    granted = cli(stack, "grant", "buyer@example.com", "--paid-cents", "900", "--note", "invoice 7")
    assert granted["entry"]["amount_mc"] == str(1000 * 1000) and granted["discount_percent"] == 10
    cli(stack, "grant", "buyer@example.com", "--credits", "2.5")
    balance = cli(stack, "balance", "buyer@example.com")
    assert balance["balance_mc"] == str(1_002_500) and balance["available_mc"] == str(1_002_500)
    ledger = cli(stack, "ledger", "buyer@example.com")
    assert [e["kind"] for e in ledger["entries"]] == ["grant", "purchase"]
    assert cli(stack, "set-premium", "buyer@example.com", "on")["premium"] is True
    key = cli(stack, "create-key", "buyer@example.com")
    headers = {"Authorization": f"Bearer {key['secret']}"}
    assert httpx.get(f"{stack['base_url']}/v1/models", headers=headers).status_code == 200
    cli(stack, "revoke-key", key["api_key"]["key_id"])
    time.sleep(5.5)  # the edge reuses a successful authentication for up to 5 s
    assert httpx.get(f"{stack['base_url']}/v1/models", headers=headers).status_code == 401
    listed = cli(stack, "list-keys", "buyer@example.com")["api_keys"]
    assert listed[0]["revoke_time"] and "secret" not in listed[0]


def test_every_service_is_healthy_and_reflectable(stack):
    for name in RUNNING:
        full_name = registry.entry(name).grpc_services[0]
        wait_serving(stack, name)
        with grpc.insecure_channel(f"127.0.0.1:{stack['ports'][name]}") as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=full_name))
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
            assert {full_name, "grpc.health.v1.Health", "univence.common.v1.ServiceInfoService"} <= services
        metrics = httpx.get(f"http://127.0.0.1:{stack['ports'][name + '_metrics']}/metrics").text
        assert "univence_grpc_server_handled_total" in metrics


def test_the_edge_serves_its_metrics_on_their_own_port_only(stack):
    httpx.get(f"{stack['base_url']}/healthz")
    metrics = httpx.get(f"http://127.0.0.1:{stack['ports']['edge_metrics']}/metrics").text
    assert "univence_edge_requests_total" in metrics
    on_the_api = httpx.get(f"{stack['base_url']}/metrics")
    assert on_the_api.status_code == 404
    assert set(on_the_api.json()["error"]) == {"message", "type", "param", "code"}


def wait_serving(stack: dict, name: str, timeout: float = 240) -> None:
    """Modality services load their (tiny) models after they listen; wait until `name` is SERVING. On two
    busy cores every service loads at once, so a load can take minutes; a failure names the service and
    shows the stack's log, which says why (a crashed load, a restart loop, or only slowness)."""
    started = time.monotonic()
    with grpc.insecure_channel(f"127.0.0.1:{stack['ports'][name]}") as channel:
        while time.monotonic() < started + timeout:
            if stack["process"].poll() is not None:
                break
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    log = (stack["workdir"] / "up.log").read_text()
    raise AssertionError(f"the {name} service was not SERVING after {time.monotonic() - started:.0f}s "
                         f"(univence up {'exited' if stack['process'].poll() is not None else 'running'}); "
                         f"the stack's log ends:\n{log[-6000:]}")


def test_the_supervisor_restarts_a_service_that_dies(stack):
    children = subprocess.run(["pgrep", "-P", str(stack["process"].pid), "-f", "serve accounts"],
                              capture_output=True, text=True).stdout.split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGKILL)
    time.sleep(0.5)
    wait_ready(stack["base_url"], stack["process"], stack["workdir"], timeout=30)
    again = subprocess.run(["pgrep", "-P", str(stack["process"].pid), "-f", "serve accounts"],
                           capture_output=True, text=True).stdout.split()
    assert again and again != children
    assert cli(stack, "get-user", "ops@example.com")["email"] == "ops@example.com"  # state survived
