"""Shared helpers for the injection tests: fixtures on disk and validation against Kubernetes 1.30-1.34."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

DATA = Path(__file__).parent / "data"
KUBERNETES_VERSIONS = ("1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0")
REGEN = os.environ.get("NETGUARD_REGEN_GOLDEN") == "1"  # NETGUARD_REGEN_GOLDEN=1 pytest tests/injection


def validate_all_versions(obj: dict[str, Any]) -> None:
    """Strict schema validation (unknown fields rejected) for every supported Kubernetes version."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def check_golden(name: str, text: str) -> None:
    path = DATA / "golden" / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with NETGUARD_REGEN_GOLDEN=1 and review the diff"
    assert text == path.read_text(), (
        f"{name} differs from its golden file (NETGUARD_REGEN_GOLDEN=1 to update)"
    )


def make_pod(**template_overrides: Any) -> dict[str, Any]:
    """A web pod opted in by label, its port named http, probes on that port."""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"app": "web", "netguard.io/waf": "enabled"},
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "example/web:1",
                    "ports": [
                        {"name": "http", "containerPort": 8080},
                        {"name": "admin", "containerPort": 9000},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                    "livenessProbe": {"tcpSocket": {"port": 8080}},
                    "startupProbe": {"httpGet": {"path": "/admin/up", "port": "admin"}},
                }
            ]
        },
    }
    for key, value in template_overrides.items():
        pod[key] = value
    return copy.deepcopy(pod)


@pytest.fixture
def pod() -> dict[str, Any]:
    return make_pod()
