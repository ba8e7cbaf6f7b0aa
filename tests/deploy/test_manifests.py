"""Deployment follows univence/registry.py: every service this repository implements has its Kubernetes
manifest (a modality's with a GPU limit) listed in the kustomization, probes on its registry port, an Envoy
route and health-checked cluster (gRPC services), an address in the edge's config (modalities) and a
container build, so none can be forgotten when a modality lands."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from univence import registry

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
IMPLEMENTED = [s for s in registry.SERVICES if importlib.util.find_spec(s.module.rpartition(".")[0]) is not None]
GRPC = [s for s in IMPLEMENTED if s.grpc_services]


def _documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((KUBE / name).read_text()))


def _deployment(name: str) -> dict:
    return next(d for d in _documents(f"{name}.yaml") if d["kind"] == "Deployment")


def _envoy() -> dict:
    return yaml.safe_load((DEPLOY / "envoy" / "envoy.yaml").read_text())


def test_kustomization_resources_exist_and_parse():
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert all(doc["kind"] for doc in _documents(resource))
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (KUBE / entry.split("=")[-1]).is_file()
    tomllib.loads((KUBE / "univence.toml").read_text())


def test_implemented_covers_the_platform_and_the_landed_modalities():
    names = {s.name for s in IMPLEMENTED}
    assert {"accounts", "media", "edge", "image", "llm"} <= names


@pytest.mark.parametrize("service", IMPLEMENTED, ids=lambda s: s.name)
def test_every_service_has_its_manifest_on_its_registry_port(service):
    resources = yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]
    assert f"{service.name}.yaml" in resources, f"deploy/kubernetes/{service.name}.yaml is not in the kustomization"
    container = _deployment(service.name)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith(f"univence/{service.name}:")
    assert service.port in [p["containerPort"] for p in container["ports"]]
    probe = container["readinessProbe"]
    probed = probe["grpc"]["port"] if service.grpc_services else probe["httpGet"]["port"]
    assert probed == service.port
    gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    assert (gpus is not None) == service.gpu, f"{service.name}: a GPU limit exactly where the registry says gpu"
    services = [d for d in _documents(f"{service.name}.yaml") if d["kind"] == "Service"]
    ports = [p["port"] for d in services for p in d["spec"]["ports"]]
    assert service.port in ports


@pytest.mark.parametrize("service", GRPC, ids=lambda s: s.name)
def test_envoy_routes_and_health_checks_every_grpc_service(service):
    envoy = _envoy()["static_resources"]
    listener = next(li for li in envoy["listeners"] if li["name"] == "grpc_internal")
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert {"prefix": f"/{service.package}."} in [r["match"] for r in routes if r["route"]["cluster"] == service.name]
    cluster = next(c for c in envoy["clusters"] if c["name"] == service.name)
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == (service.name, service.port)
    assert cluster["health_checks"][0]["grpc_health_check"]["service_name"] == service.grpc_services[0]


def test_the_edge_config_reaches_every_deployed_modality():
    edge = tomllib.loads((KUBE / "univence.toml").read_text())["edge"]
    modalities = [s for s in IMPLEMENTED if s.kind == "modality"]
    assert sorted(edge["modalities"]) == sorted(s.name for s in modalities)
    for service in modalities:
        assert edge["modality_addresses"][service.name] == f"{service.name}:{service.port}"
    platform = {s.name: s for s in IMPLEMENTED if s.kind == "platform"}
    assert edge["accounts_address"] == f"accounts:{platform['accounts'].port}"
    assert edge["media_address"] == f"media:{platform['media'].port}"


def test_every_service_has_a_container_build():
    done = subprocess.run([sys.executable, "deploy/build_images.py", "--dry-run"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    commands = done.stdout.splitlines()
    for service in IMPLEMENTED:
        line = next((c for c in commands if f"SERVICE={service.name} " in c), None)
        assert line is not None, f"no image build for {service.name}"
        assert f"EXTRAS={service.extra} " in line and f"-t univence/{service.name}:" in line
        assert ("BASE=nvidia/cuda" in line) == service.gpu
        for package in service.no_deps_packages:
            assert package in line.partition("NO_DEPS_PACKAGES=")[2], f"{service.name}'s image lacks {package}"
