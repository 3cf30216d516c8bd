"""The UI's API in local mode and through the controller proxy, the WAF blocks, the policy bundle."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from netguard.errors import InputError
from policygen.pipeline import observe
from policygen.review import build_review
from tests.visualizer.conftest import BOOKINFO_WORKLOADS, FLOWS, INVENTORY, serve_in_thread
from visualizer.app import main as ui_main
from visualizer.app import parse_listen
from visualizer.backends import ControllerBackend, LocalBackend
from visualizer.server import create_app


@pytest.fixture(scope="module")
def review():
    observed = observe([INVENTORY], [FLOWS])
    return build_review(observed.inventory, observed.edges)


@pytest.fixture
def client(review):
    with TestClient(create_app(LocalBackend(review))) as c:
        yield c


def test_graph_is_the_review_graph_with_labels_and_pods_added(client, review):
    graph = client.get("/api/v1/graph").json()
    plain = review.graph_json()
    assert [n["id"] for n in graph["nodes"]] == [n["id"] for n in plain["nodes"]]
    assert graph["edges"] == plain["edges"]
    node = next(n for n in graph["nodes"] if n["id"] == "default/ratings-v1")
    assert node["labels"] == {"app": "ratings", "version": "v1"}
    assert node["pods"][0]["name"].startswith("ratings-v1-")
    assert {n["name"] for n in graph["nodes"] if n["namespace"] == "default"} == set(BOOKINFO_WORKLOADS)


def test_approve_changes_policies_and_rejects_bad_input(client):
    ok = client.post("/api/v1/policies/approve", json={"workload": "default/Deployment/details-v1", "decision": "approved"})
    assert ok.status_code == 200
    status = {p["workload"]: p["status"] for p in client.get("/api/v1/policies").json()["policies"]}
    assert status["default/Deployment/details-v1"] == "approved"
    assert status["default/Deployment/ratings-v1"] == "pending"
    bad = client.post("/api/v1/policies/approve", json={"workload": "default/Deployment/details-v1", "decision": "maybe"})
    assert bad.status_code == 400 and "decision" in bad.json()["detail"]
    unknown = client.post("/api/v1/policies/approve", json={"workload": "default/Deployment/nope", "decision": "approved"})
    assert unknown.status_code == 404
    assert client.post("/api/v1/policies/approve", content=b"{not json").status_code == 400


def test_diff_impact_alerts_and_unknown_paths(client):
    diff = client.get("/api/v1/policies/diff").json()
    assert {c["status"] for c in diff["changes"]} == {"added"}
    impact = client.get("/api/v1/policies/impact").json()
    assert impact["candidate"]["denied"] == [] and impact["candidate"]["edges"] == 11
    assert client.get("/api/v1/alerts").json() == {"alerts": []}
    assert client.get("/api/v1/nothing").status_code == 404


def test_policy_bundle_is_a_git_folder_layout_of_the_chosen_policies(client):
    client.post("/api/v1/policies/approve", json={"workload": "default/Deployment/reviews-v3", "decision": "approved"})
    approved = zipfile.ZipFile(io.BytesIO(client.get("/ui/policies.zip").content))
    assert sorted(approved.namelist()) == ["netguard-policies/default/reviews-v3.yaml", "netguard-policies/kustomization.yaml"]
    assert b"kind: NetworkPolicy" in approved.read("netguard-policies/default/reviews-v3.yaml")
    assert b"- default/reviews-v3.yaml" in approved.read("netguard-policies/kustomization.yaml")
    everything = zipfile.ZipFile(io.BytesIO(client.get("/ui/policies.zip?status=all").content))
    assert len(everything.namelist()) == 7
    assert client.get("/ui/policies.zip?status=bogus").status_code == 400


def test_approvals_survive_a_restart_when_kept_in_a_file(review, tmp_path):
    path = tmp_path / "approvals.json"
    with TestClient(create_app(LocalBackend(review, path))) as c:
        c.post("/api/v1/policies/approve", json={"workload": "default/Deployment/details-v1", "decision": "rejected"})
    assert json.loads(path.read_text()) == {"default/Deployment/details-v1": "rejected"}
    with TestClient(create_app(LocalBackend(review, path))) as c:
        status = {p["workload"]: p["status"] for p in c.get("/api/v1/policies").json()["policies"]}
    assert status["default/Deployment/details-v1"] == "rejected"


def test_waf_blocks_are_counted_on_the_node_they_target(review):
    records = [
        {
            "time": 1790000100,
            "request_id": "a",
            "blocked": True,
            "categories": ["sqli"],
            "path": "/?id=1'or'1",
            "client": "203.0.113.7",
            "host": "productpage.default.svc.cluster.local:9080",
        },
        {
            "time": 1790000101,
            "request_id": "b",
            "blocked": True,
            "categories": ["xss"],
            "path": "/<script>",
            "client": "203.0.113.7",
            "workload": "default/Deployment/productpage-v1",
        },
        {
            "time": 1790000102,
            "request_id": "c",
            "blocked": False,
            "categories": [],
            "path": "/",
            "client": "203.0.113.7",
            "workload": "default/productpage-v1",
        },
        {
            "time": 1790000103,
            "request_id": "d",
            "blocked": True,
            "categories": ["rce"],
            "path": "/",
            "client": "x",
            "host": "unknown",
        },
    ]
    from waf.audit import AuditRecord

    audit = [AuditRecord.from_dict(r) for r in records]
    with TestClient(create_app(LocalBackend(review), waf_records=audit)) as c:
        waf = c.get("/ui/waf").json()
    target = waf["targets"]["default/productpage-v1"]
    assert target["blocked"] == 2 and target["categories"] == {"sqli": 1, "xss": 1}
    assert waf["unmatched"] == 1 and waf["blocked"] == 3 and waf["requests"] == 4


def fake_controller(review, token: str, alerts: list[dict] | None = None):
    """The controller's review API, as a stand-in: the local app behind a bearer-token check, with the
    controller's alerts ({"alerts": [...]}, as policygen/controller's store lists them)."""
    backend = LocalBackend(review)
    # what the controller adds to the graph: each namespace's mode, and whether an edge is in the learned baseline
    backend.graph["modes"] = {ns: "monitor" for ns in backend.graph["namespaces"]}
    for edge in backend.graph["edges"]:
        edge["baseline"] = not any(a["source"] == edge["source"] and a["target"] == edge["target"] for a in alerts or [])
    backend._graph_bytes = json.dumps(backend.graph).encode("utf-8")
    app = create_app(backend)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.url.path.startswith("/api/") and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        if request.url.path == "/api/v1/alerts":
            return JSONResponse({"alerts": alerts or []})
        return await call_next(request)

    return app


def test_controller_mode_proxies_the_same_api_with_the_token(review):
    with serve_in_thread(fake_controller(review, "s3cret")) as controller:
        with TestClient(create_app(ControllerBackend(controller, "s3cret"))) as c:
            assert c.get("/ui/info").json()["mode"] == "controller"
            graph = c.get("/api/v1/graph").json()
            assert graph["stats"]["edges"] == 11
            r = c.post("/api/v1/policies/approve", json={"workload": "default/Deployment/ratings-v1", "decision": "approved"})
            assert r.status_code == 200
            status = {p["workload"]: p["status"] for p in c.get("/api/v1/policies").json()["policies"]}
            assert status["default/Deployment/ratings-v1"] == "approved"
            bad = c.post("/api/v1/policies/approve", json={"workload": "x", "decision": "approved"})
            assert bad.status_code == 404 and "controller answered 404" in bad.json()["detail"]
            assert len(zipfile.ZipFile(io.BytesIO(c.get("/ui/policies.zip").content)).namelist()) == 2
        with TestClient(create_app(ControllerBackend(controller, "wrong"))) as c:
            assert c.get("/api/v1/graph").status_code == 401


def test_controller_unreachable_is_a_502_with_a_reason():
    from tests.visualizer.conftest import free_port

    with TestClient(create_app(ControllerBackend(f"http://127.0.0.1:{free_port()}", None, timeout=2))) as c:
        r = c.get("/api/v1/graph")
    assert r.status_code == 502 and "unreachable" in r.json()["detail"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--listen", "nonsense"], "HOST:PORT"),
        ([], "give --flows"),
        (["--controller", "ftp://x"], "http(s) URL"),
        (["--controller", "http://127.0.0.1:1", "--flows", str(FLOWS)], "drop --inventory"),
        (["--token-file", "t", "--flows", str(FLOWS)], "--token-file goes with --controller"),
        (["--flows", str(FLOWS), "--waf-log", "/nonexistent/waf.jsonl"], "cannot read"),
    ],
)
def test_bad_arguments_are_one_line_input_errors(argv, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ui_main(argv)


def test_parse_listen():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(InputError):
        parse_listen("127.0.0.1:99999")


def test_netguard_ui_bad_input_is_one_line_and_exit_2(capsys):
    from netguard.cli import main

    assert main(["ui", "--listen", "nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["netguard ui: error: --listen: expected HOST:PORT, got 'nowhere'"]


def test_netguard_ui_help_has_examples(capsys):
    from netguard.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["ui", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--controller" in out and "examples:" in out and "--waf-log" in out


def _walk(client, path: str, limit: int) -> tuple[list[str], list[dict]]:
    """Every page of `path` with `limit`, following metadata.continue: (the tokens, the items)."""
    tokens, items, token = [], [], ""
    while True:
        r = client.get(path, params={"limit": limit, **({"continue": token} if token else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["policies"]) <= limit
        items += page["policies"]
        token = page["metadata"]["continue"]
        if not token:
            return tokens, items
        tokens.append(token)


def test_pages_of_policies_pass_through_netguard_ui_with_their_continue_tokens(review, tmp_path):
    """`netguard ui` in front of a real controller passes limit and continue through (and the local backend
    pages the same way): walking a namespace's policies page by page gives its whole list, in order."""
    from policygen.controller.app import create_app as controller_app
    from policygen.controller.metrics import Metrics
    from policygen.controller.service import Controller, FileInventory
    from policygen.controller.settings import Settings
    from policygen.controller.store import open_store

    settings = Settings(db=str(tmp_path / "c.db"), no_auth=True, review_max_age=0.0).validate()
    controller = Controller(settings, open_store(settings.db), FileInventory([str(INVENTORY)]), Metrics())
    records = [json.loads(line) for line in FLOWS.read_text().splitlines() if line.strip()]
    controller.ingest(json.dumps({"agent": "node-1", "flows": records}).encode())
    try:
        with serve_in_thread(controller_app(controller)) as url, \
                TestClient(create_app(ControllerBackend(url))) as ui, TestClient(create_app(LocalBackend(review))) as local:
            whole = ui.get("/api/v1/namespaces/default/policies").json()["policies"]
            assert len(whole) == len(BOOKINFO_WORKLOADS) and "metadata" not in ui.get("/api/v1/policies").json()
            tokens, items = _walk(ui, "/api/v1/namespaces/default/policies", 2)
            assert items == whole and len(tokens) == 2
            first = ui.get("/api/v1/policies", params={"limit": 1}).json()
            assert len(first["policies"]) == 1 and first["metadata"]["remainingItemCount"] == len(whole) - 1
            assert ui.get("/api/v1/policies", params={"limit": 1, "continue": "not-a-token"}).status_code == 400
            key = whole[0]["workload"]
            assert ui.get(f"/api/v1/workloads/{key}/policy").json() == whole[0]
            assert ui.get("/api/v1/namespaces/default/diff").json()["changes"]
            # the local backend (files) pages alike: the same workloads, the same tokens
            local_tokens, local_items = _walk(local, "/api/v1/namespaces/default/policies", 2)
            assert local_tokens == tokens and [p["workload"] for p in local_items] == [p["workload"] for p in whole]
            assert local.get(f"/api/v1/workloads/{key}/policy").json()["workload"] == key
            assert local.get("/api/v1/namespaces/default/impact").json().keys() == {"current", "candidate"}
            assert local.get("/api/v1/policies", params={"limit": 1, "continue": "!!"}).status_code == 400
    finally:
        controller.close()
