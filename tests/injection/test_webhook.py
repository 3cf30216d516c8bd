"""The webhook as the API server meets it: a real process, real TLS on 127.0.0.1, AdmissionReview v1."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonpatch
import pytest
from cryptography import x509

from tests.injection.conftest import DATA, stop_process, validate_all_versions
from waf.injection import inject_pod
from waf.injection.mutation import INIT, SIDECAR
from waf.injection.webhook import ReviewError, review

REVIEWS = DATA / "reviews"


def load(name: str) -> dict:
    return json.loads((REVIEWS / name).read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tls")
    run = subprocess.run(
        [sys.executable, "-m", "netguard", "webhook", "certs", "--out-dir", str(out), "--ip", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert base64.b64decode(run.stdout.strip()) == (out / "ca.crt").read_bytes()  # the caBundle
    return out


@contextlib.contextmanager
def running_webhook(tls: Path, log: Path, *extra: str):
    """`netguard webhook` started as it would be in the pod; stopped (by its pid) afterwards."""
    port = free_port()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "netguard", "webhook", "--listen", f"127.0.0.1:{port}",
                "--tls-cert", str(tls / "tls.crt"), "--tls-key", str(tls / "tls.key"), *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    client = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, f"the webhook exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"the webhook did not start: {log.read_text()}"
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        stop_process(proc)


@pytest.fixture(scope="module")
def webhook(tls, tmp_path_factory):
    with running_webhook(tls, tmp_path_factory.mktemp("log") / "webhook.log") as client:
        yield client


def post(client: httpx.Client, body) -> httpx.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/mutate", content=data, headers={"Content-Type": "application/json"})


def patched(request_review: dict, answer: dict) -> dict:
    response = answer["response"]
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    return jsonpatch.apply_patch(request_review["request"]["object"], patch)


def test_a_takeover_review_gets_a_patch_that_makes_a_valid_pod_with_the_port_moved(webhook):
    sent = load("pod-takeover.json")
    answer = post(webhook, sent).json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == sent["request"]["uid"] and response["allowed"] is True
    assert "warnings" not in response
    pod = patched(sent, answer)
    validate_all_versions(pod)
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert containers[SIDECAR]["ports"][0] == {"name": "web", "containerPort": 8080, "protocol": "TCP"}
    assert "--mode" in containers[SIDECAR]["command"] and "detect" in containers[SIDECAR]["command"]
    assert containers["storefront"]["ports"][0]["name"] == "app-web"
    assert containers["storefront"]["ports"][0]["containerPort"] == 15081
    assert {"name": "PORT", "value": "15081"} in containers["storefront"]["env"]
    assert containers["storefront"]["readinessProbe"]["httpGet"]["port"] == 15081
    assert pod == inject_pod(sent["request"]["object"], namespace="shop").pod  # the same mutation as inject


def test_an_iptables_review_gets_the_init_container_and_validates(webhook):
    sent = load("pod-iptables.json")
    pod = patched(sent, post(webhook, sent).json())
    validate_all_versions(pod)
    assert pod["spec"]["initContainers"][0]["name"] == INIT
    assert (
        pod["spec"]["containers"][0]["ports"] == sent["request"]["object"]["spec"]["containers"][0]["ports"]
    )


def test_reviewing_the_injected_pod_again_gives_no_patch(webhook):
    sent = load("pod-takeover.json")
    again = copy.deepcopy(sent)
    again["request"]["object"] = patched(sent, post(webhook, sent).json())
    response = post(webhook, again).json()["response"]
    assert response["allowed"] is True and "patch" not in response and "patchType" not in response


def test_a_pod_that_did_not_opt_in_is_admitted_unchanged(webhook):
    sent = load("pod-not-opted-in.json")
    answer = post(webhook, sent).json()
    assert answer["response"] == {"uid": sent["request"]["uid"], "allowed": True}


def test_a_pod_it_does_not_understand_is_admitted_with_the_reason_in_warnings(webhook):
    sent = load("pod-host-network.json")
    response = post(webhook, sent).json()["response"]
    assert response["allowed"] is True and "patch" not in response
    assert len(response["warnings"]) == 1
    assert response["warnings"][0].startswith(
        "netguard-waf: Pod shop/storefront-7d9c6b5f8-*: hostNetwork pod"
    )


def test_updates_and_other_kinds_are_admitted_without_a_patch(webhook):
    update = load("pod-takeover.json")
    update["request"]["operation"] = "UPDATE"
    assert post(webhook, update).json()["response"] == {"uid": update["request"]["uid"], "allowed": True}
    service = load("pod-takeover.json")
    service["request"]["kind"] = {"group": "", "version": "v1", "kind": "Service"}
    response = post(webhook, service).json()["response"]
    assert "patch" not in response and "only Pods are injected, not Service" in response["warnings"][0]


@pytest.mark.parametrize(
    "body,error",
    [
        (b"{not json", "the body is not JSON"),
        ([1, 2], "the body is not a JSON object"),
        (
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}},
            "want apiVersion admission.k8s.io/v1 kind AdmissionReview, got admission.k8s.io/v1beta1/",
        ),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
            "the AdmissionReview has no request",
        ),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"object": {}}},
            "the AdmissionReview request has no uid",
        ),
    ],
)
def test_a_malformed_review_gets_a_clear_400_and_the_server_keeps_serving(webhook, body, error):
    answer = post(webhook, body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error) and len(answer.json()) == 1
    assert webhook.get("/healthz").json() == {"status": "ok"}


def test_a_review_whose_object_is_garbage_is_still_admitted(webhook):
    sent = load("pod-takeover.json")
    sent["request"]["object"]["spec"] = {"containers": "storefront"}
    response = post(webhook, sent).json()["response"]
    assert response["allowed"] is True and "patch" not in response
    assert "spec.containers is not a list" in response["warnings"][0]


def test_the_server_speaks_only_tls_with_the_made_certificate(webhook, tls):
    with pytest.raises(httpx.ConnectError):
        httpx.get(str(webhook.base_url) + "/healthz", verify=True, timeout=5)  # the system CAs: untrusted
    plain = str(webhook.base_url).replace("https://", "http://") + "/healthz"
    with pytest.raises(httpx.HTTPError):
        httpx.get(plain, timeout=5)
    assert webhook.get("/mutate").status_code == 405


def test_the_serving_certificate_names_the_service_and_chains_to_the_ca(tls):
    ca = x509.load_pem_x509_certificate((tls / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((tls / "tls.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "netguard-webhook.netguard-system.svc" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert (tls / "tls.key").stat().st_mode & 0o077 == 0


def test_serving_without_the_tls_files_is_one_line_and_exit_2(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "netguard",
            "webhook",
            "--tls-cert",
            str(tmp_path / "no.crt"),
            "--tls-key",
            str(tmp_path / "no.key"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert (
        run.stderr == f"netguard webhook: error: {tmp_path / 'no.crt'}: no such file "
        "(make them with `netguard webhook certs`)\n"
    )


def test_review_is_a_pure_function_that_rejects_non_reviews():
    with pytest.raises(ReviewError):
        review("AdmissionReview")
    answer = review(load("pod-not-opted-in.json"))
    assert answer["response"]["allowed"] is True


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path):
    tls = tmp_path / "tls"
    make = [sys.executable, "-m", "netguard", "webhook", "certs", "--out-dir", str(tls), "--ip", "127.0.0.1"]
    subprocess.run(make, capture_output=True, timeout=60, check=True)
    with running_webhook(tls, tmp_path / "log", "--tls-reload-seconds", "0.2") as client:
        old_ca = (tls / "ca.crt").read_bytes()
        old_trust = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        refused = subprocess.run(make, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "ca.crt: exists; --force" in refused.stderr
        assert (tls / "ca.crt").read_bytes() == old_ca  # nothing overwritten without --force
        subprocess.run([*make, "--force"], capture_output=True, timeout=60, check=True)  # renewal: a new CA
        assert (tls / "ca.crt").read_bytes() != old_ca
        new_trust = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(str(client.base_url) + "/healthz", verify=new_trust, timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the renewed certificate was never served"
                time.sleep(0.2)
        assert response.json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError):  # a new connection that trusts only the old CA
            httpx.get(str(client.base_url) + "/healthz", verify=old_trust, timeout=5)
        assert "tls-reloaded" in (tmp_path / "log").read_text()
