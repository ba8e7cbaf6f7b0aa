"""The Kubernetes manifests parse, reference files that exist, and probe the ports services listen on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from services.accounts.config import AccountsSettings
from services.media.config import MediaSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_kustomization_resources_exist_and_parse():
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / resource).read_text()))
        assert all(doc["kind"] for doc in documents)
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (DEPLOY / "kubernetes" / entry.split("=")[-1]).is_file()
    tomllib.loads((DEPLOY / "kubernetes" / "univence.toml").read_text())


def test_probes_use_the_service_ports():
    ports = {"accounts": AccountsSettings.model_fields["port"].default,
             "media": MediaSettings.model_fields["port"].default}
    for name, port in ports.items():
        deployment = next(d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / f"{name}.yaml").read_text())
                          if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["grpc"]["port"] == port
