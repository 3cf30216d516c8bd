"""The controller's HTTP API (FastAPI). Thin: every verb is a Controller method.

Auth: `Authorization: Bearer <token>`, tokens from `--token-file` (one a line). Writes (ingest,
approve, apply, modes) always need a token: 401 without one, 403 with a wrong one. Reads (graph,
policies, diff, impact, alerts) are open unless `read_auth` is set; /metrics, /healthz and /readyz
are always open.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from netguard.errors import InputError
from policygen.controller.ingest import BODY_SCHEMA, EDGE_BODY_SCHEMA, BatchError
from policygen.controller.service import Controller, StaleDigest
from policygen.controller.settings import Role, Settings, Token, parse_tokens, read_tokens
from policygen.controller.store import parse_workload_key

log = logging.getLogger("netguard.controller")


class Approval(BaseModel):
    workload: str = Field(description="the workload's key, namespace/Kind/name", examples=["default/Deployment/reviews-v1"])
    decision: str = Field(description="approved, rejected or pending", examples=["approved"])
    digest: str = Field("", description="the digest of the text reviewed (the policy's `digest`); when the policy "
                                        "changed since, 409 and nothing is recorded")


class ModeRequest(BaseModel):
    mode: str = Field(description="learn, monitor or protect", examples=["monitor"])


class ApplyRequest(BaseModel):
    dry_run: bool = Field(False, description="only the server-side dry run; nothing is changed")
    remove: bool = Field(False, description="remove the policies netguard applied (same as DELETE)")


class Accepted(BaseModel):
    accepted: int = Field(description="flow (or edge) records stored durably")
    connections: int = Field(description="new connections among them (Hubble reply packets are not)")


ANONYMOUS = Token("", "anonymous", Role.WRITE)  # --no-auth
WRITERS = frozenset({Role.WRITE})
INGESTERS = frozenset({Role.WRITE, Role.INGEST})
READERS = frozenset({Role.READ, Role.WRITE})  # an agent's token (ingest) does not read the map


def _check_token(request: Request, tokens: tuple[Token, ...], allowed: frozenset[Role] = frozenset(Role)) -> Token:
    """The token the request carries (401 without one, 403 when unknown or its role is not `allowed`)."""
    header = request.headers.get("authorization", "")
    scheme, _, sent = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not sent.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    sent = sent.strip()
    found = None
    for t in tokens:  # every one compared: the time taken does not tell which matched
        if hmac.compare_digest(sent.encode(), t.secret.encode()):
            found = t
    if found is None:
        raise HTTPException(403, "invalid token")
    if found.role not in allowed:
        raise HTTPException(403, f"token {found.name!r} may only {'read' if found.role == Role.READ else 'send flows'}")
    return found


class TokenSource:
    """The accepted tokens; the token file is read again when it changes (a rotated Kubernetes Secret),
    looked at no more than once a second. An unreadable or empty new version keeps the old tokens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = parse_tokens(settings.tokens)
        self._checked = time.monotonic()
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return os.stat(self.settings.token_file).st_mtime_ns if self.settings.token_file else 0
        except OSError:
            return 0

    def current(self) -> tuple[Token, ...]:
        if self.settings.token_file and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            mtime = self._stat()
            if mtime and mtime != self._mtime:
                self._mtime = mtime
                try:
                    self.tokens = parse_tokens(read_tokens(self.settings.token_file))
                    log.info("token file changed: %d tokens", len(self.tokens))
                except InputError as exc:
                    log.error("token file: %s; keeping the previous tokens", exc)
        return self.tokens


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served by the controller itself (the swagger-ui-bundle package),
    so it works on an air-gapped cluster; FastAPI's default loads them from a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="netguard controller API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


def create_app(controller: Controller) -> FastAPI:
    settings = controller.settings
    metrics = controller.metrics
    tokens = TokenSource(settings)
    app = FastAPI(
        title="netguard controller",
        version="1",
        description="Ingest of flows from node agents; the learned graph; generated NetworkPolicies to review, "
                    "approve and apply; lateral-movement alerts.",
        docs_url=None,
        redoc_url=None,
    )
    _offline_docs(app)
    app.state.controller = controller
    # a 10,000-workload graph is tens of MB of JSON, a page of 100 policies 1.3 MB: level 5 compresses a page
    # in 8 ms to 72 kB where the default 9 takes 18 ms for 64 kB
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    if settings.cors_origins:  # for a browser page served elsewhere (netguard ui) calling this API directly
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["Authorization", "Content-Type"])

    def write_auth(request: Request) -> None:
        """Checks the token; the endpoint finds it (who acts) in request.state.token."""
        request.state.token = ANONYMOUS if settings.no_auth else _check_token(request, tokens.current(), WRITERS)

    def ingest_auth(request: Request) -> None:
        if not settings.no_auth:
            _check_token(request, tokens.current(), INGESTERS)

    def read_auth(request: Request) -> None:
        if settings.read_auth and not settings.no_auth:
            _check_token(request, tokens.current(), READERS)

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post(
        "/api/v1/flows",
        response_model=Accepted,
        dependencies=[Depends(ingest_auth)],
        summary="Ingest a batch of flow records from a node agent",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BODY_SCHEMA}}}},
        responses={401: {"description": "no bearer token"}, 403: {"description": "wrong token"},
                   413: {"description": "too large"}, 422: {"description": "invalid batch; nothing stored"},
                   503: {"description": "the store failed; nothing acknowledged, retry"}},
    )
    async def post_flows(request: Request) -> Any:
        return await _ingest(request, controller.parse, controller.stage)

    @app.post(
        "/api/v1/edges",
        response_model=Accepted,
        dependencies=[Depends(ingest_auth)],  # an agent's token (role=ingest) ships edges as it ships flows
        summary="Ingest the edges a node agent aggregated over one interval",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": EDGE_BODY_SCHEMA}}}},
        responses={401: {"description": "no bearer token"}, 403: {"description": "wrong token"},
                   413: {"description": "too large"}, 422: {"description": "invalid batch; nothing stored"},
                   503: {"description": "the store failed; nothing acknowledged, retry"}},
    )
    async def post_edges(request: Request) -> Any:
        return await _ingest(request, controller.parse_edges, controller.stage_edges)

    async def _ingest(request: Request, parse: Any, stage: Any) -> Any:
        """One batch, flows or edges: bounded read, strict parse, enrich and classify, answer after the commit.
        A batch of a monitored namespace that needs an approved set still being built (the first after a
        start, or one with new approvals) awaits it: the loop serves other requests meanwhile."""
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body:
            metrics.rejected.labels(status="413").inc()
            raise HTTPException(413, f"body of {length} bytes; at most {settings.max_body}")
        chunks, size = [], 0
        async for chunk in request.stream():  # bounded even without a Content-Length (chunked)
            size += len(chunk)
            if size > settings.max_body:
                metrics.rejected.labels(status="413").inc()
                raise HTTPException(413, f"body larger than {settings.max_body} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            batch = parse(body)
        except BatchError as exc:
            metrics.rejected.labels(status=str(exc.status)).inc()
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        staged = stage(batch, body)
        while (waiting := controller.awaiting(staged)) is not None:
            try:
                await asyncio.wrap_future(waiting)
            except Exception as exc:
                metrics.batches.labels(result="error").inc()
                log.error("batch from %s not judged: the approved policies could not be built: %s", batch.agent, exc)
                return JSONResponse({"detail": f"approved policies not built, nothing stored: {exc}"}, status_code=503)
        prepared = controller.classify(staged)
        try:
            await asyncio.wrap_future(controller.store.submit(prepared.write))
        except Exception as exc:
            controller.failed(prepared)
            log.error("store: batch from %s not stored: %s", batch.agent, exc)
            return JSONResponse({"detail": f"store error, nothing stored: {exc}"}, status_code=503)
        controller.committed(prepared)
        metrics.latency.observe(time.perf_counter() - started)
        return {"accepted": batch.records, "connections": batch.connections}

    def cached_json(request: Request, doc: Any) -> Response:
        """JSON with an ETag (a digest of the body): a client that sends it back in If-None-Match gets a
        304 and no body. Bodies are gzip-compressed by the middleware when the client accepts it. `doc`:
        data, or JSON already encoded (the policies, assembled from their kept renderings)."""
        if doc is None:
            raise HTTPException(404, "not found")
        body = doc if isinstance(doc, bytes) else json.dumps(doc, separators=(",", ":")).encode()
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    async def serve(request: Request, fn: Any, *args: Any) -> Response:
        return cached_json(request, await run_in_threadpool(fn, *args))

    def page_args(limit: int, token: str) -> tuple[int, str]:
        if limit < 0:
            raise HTTPException(400, "limit: expected 0 (everything) or more")
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode() if token else ""
            if after:
                parse_workload_key(after)
        except (ValueError, InputError):
            raise HTTPException(400, f"continue: not a token this API gave out: {token[:80]!r}") from None
        return limit, after

    def continue_token(key: str) -> str:
        """As the Kubernetes API does: `metadata.continue` names where the next page starts."""
        return base64.urlsafe_b64encode(key.encode()).decode()

    Limit = Query(0, ge=0, description="at most this many items (0: all); the answer's metadata.continue fetches more")
    Continue = Query("", alias="continue", description="metadata.continue of the previous page")

    @app.get("/api/v1/graph", dependencies=[Depends(read_auth)], summary="The workload graph with verdicts")
    async def graph(request: Request) -> Any:
        return await serve(request, controller.graph_json)

    @app.get("/api/v1/policies", dependencies=[Depends(read_auth)],
             summary="Generated NetworkPolicies with status, in workload order; paginated with limit and continue")
    async def policies(request: Request, limit: int = Limit, token: str = Continue) -> Any:
        limit, after = page_args(limit, token)
        return await serve(request, controller.policies_body, None, limit, after, continue_token)

    @app.get("/api/v1/policies/diff", dependencies=[Depends(read_auth)], summary="Generated vs the cluster's policies")
    async def diff(request: Request) -> Any:
        return await serve(request, controller.diff_json)

    @app.get("/api/v1/policies/impact", dependencies=[Depends(read_auth)],
             summary="Observed edges the current and the candidate policies deny")
    async def impact(request: Request) -> Any:
        return await serve(request, controller.impact_json)

    @app.get("/api/v1/namespaces", dependencies=[Depends(read_auth)],
             summary="Every namespace with its counts and mode: a large cluster's map opens one at a time")
    async def namespaces(request: Request) -> Any:
        return await serve(request, controller.namespaces_json)

    @app.get("/api/v1/namespaces/{namespace}/graph", dependencies=[Depends(read_auth)],
             summary="The graph around one namespace: its workloads, their peers and every edge touching them")
    async def namespace_graph(request: Request, namespace: str) -> Any:
        return await serve(request, controller.graph_json, namespace)

    @app.get("/api/v1/namespaces/{namespace}/policies", dependencies=[Depends(read_auth)],
             summary="One namespace's generated policies; paginated with limit and continue")
    async def namespace_policies(request: Request, namespace: str, limit: int = Limit, token: str = Continue) -> Any:
        limit, after = page_args(limit, token)
        return await serve(request, controller.policies_body, namespace, limit, after, continue_token)

    @app.get("/api/v1/namespaces/{namespace}/diff", dependencies=[Depends(read_auth)],
             summary="One namespace's generated vs its cluster policies")
    async def namespace_diff(request: Request, namespace: str) -> Any:
        return await serve(request, controller.diff_json, namespace)

    @app.get("/api/v1/namespaces/{namespace}/impact", dependencies=[Depends(read_auth)],
             summary="Edges touching one namespace that the current and the candidate policies deny")
    async def namespace_impact(request: Request, namespace: str) -> Any:
        return await serve(request, controller.impact_json, namespace)

    @app.get("/api/v1/workloads/{namespace}/{kind}/{name}/policy", dependencies=[Depends(read_auth)],
             summary="One workload's generated policy (404 when it has none)")
    async def workload_policy(request: Request, namespace: str, kind: str, name: str) -> Any:
        return await serve(request, controller.workload_policy_body, f"{namespace}/{kind}/{name}")

    @app.get("/api/v1/workloads/{namespace}/{kind}/{name}/graph", dependencies=[Depends(read_auth)],
             summary="The edges of one workload and its peers")
    async def workload_graph(request: Request, namespace: str, kind: str, name: str) -> Any:
        return await serve(request, lambda: controller.graph_json(workload=f"{namespace}/{kind}/{name}"))

    @app.get("/api/v1/workloads/{namespace}/{kind}/{name}/diff", dependencies=[Depends(read_auth)],
             summary="One workload's generated policy vs the cluster's policy of that name")
    async def workload_diff(request: Request, namespace: str, kind: str, name: str) -> Any:
        return await serve(request, lambda: controller.diff_json(workload=f"{namespace}/{kind}/{name}"))

    @app.get("/api/v1/workloads/{namespace}/{kind}/{name}/impact", dependencies=[Depends(read_auth)],
             summary="One workload's edges that the current and the candidate policies deny")
    async def workload_impact(request: Request, namespace: str, kind: str, name: str) -> Any:
        return await serve(request, lambda: controller.impact_json(workload=f"{namespace}/{kind}/{name}"))

    @app.post("/api/v1/policies/approve", dependencies=[Depends(write_auth)],
              summary="Approve or reject a workload's policy, bound to the digest of its text",
              responses={409: {"description": "the policy changed since the digest sent: review it again"}})
    async def approve(request: Request, body: Approval) -> Any:
        who = request.state.token.name
        try:
            return await run_in_threadpool(controller.approve, body.workload, body.decision, who, body.digest)
        except StaleDigest as exc:
            return JSONResponse({"detail": str(exc), "digest": exc.current}, status_code=409)

    @app.get("/api/v1/audit", dependencies=[Depends(read_auth)],
             summary="The review's audit trail, newest first: approvals, rejections, applies, deletes (who, when, digest)")
    async def audit(request: Request, limit: int = Query(500, ge=1, le=10000), workload: str = "") -> Any:
        return await serve(request, controller.audit_json, limit, workload)

    @app.get("/api/v1/events", dependencies=[Depends(read_auth)],
             summary="Server-Sent Events: graph (new edges), alert, review (decisions, applies, modes), resync")
    async def events() -> Any:
        return StreamingResponse(controller.events.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/v1/policies/apply", dependencies=[Depends(write_auth)],
              summary="Server-side apply the policies of protect-mode namespaces whose text is the approved one "
                      "(dry run first: per policy, create, change or unchanged)")
    async def apply(request: Request, body: ApplyRequest | None = None) -> Any:
        body = body or ApplyRequest(dry_run=False, remove=False)
        who = request.state.token.name
        return await run_in_threadpool(lambda: controller.apply(remove=body.remove, dry_run_only=body.dry_run, who=who))

    @app.delete("/api/v1/policies/apply", dependencies=[Depends(write_auth)],
                summary="Remove the NetworkPolicies netguard applied")
    async def unapply(request: Request) -> Any:
        who = request.state.token.name
        return await run_in_threadpool(lambda: controller.apply(remove=True, who=who))

    @app.post("/api/v1/baseline/rebuild", dependencies=[Depends(write_auth)],
              summary="Re-enrich the retained raw flows against the current inventory and replace the edges")
    async def rebuild(force: bool = False) -> Any:
        return await run_in_threadpool(controller.rebuild_baseline, force)

    @app.get("/api/v1/modes", dependencies=[Depends(read_auth)],
             summary="Every known namespace with its mode in force and where it comes from")
    async def modes() -> Any:
        return await run_in_threadpool(controller.modes_json)

    @app.put("/api/v1/modes/{namespace}", dependencies=[Depends(write_auth)],
             summary="Set a namespace's mode at runtime (stored; over the config, under the Namespace label)")
    async def set_mode(namespace: str, body: ModeRequest) -> Any:
        return await run_in_threadpool(controller.set_mode, namespace, body.mode)

    @app.delete("/api/v1/modes/{namespace}", dependencies=[Depends(write_auth)],
                summary="Drop the mode set through the API: the config's (or the label's) applies again")
    async def clear_mode(namespace: str) -> Any:
        return await run_in_threadpool(controller.clear_mode, namespace)

    @app.get("/api/v1/alerts", dependencies=[Depends(read_auth)], summary="Lateral-movement alerts, one per edge")
    async def alerts() -> Any:
        return await run_in_threadpool(controller.alerts_json)

    @app.get("/api/v1/leader", summary="Which replica leads (runs alert dispatch, the automatic apply, pruning)")
    async def leader() -> Any:
        lead = controller.leadership
        return {"identity": lead.identity, "leader": lead.is_leader, "holder": lead.holder()}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the store answers, the inventory has synced, and (when a namespace is "
                                "monitored) the approved policies batches are judged by are built")
    async def readyz() -> Any:
        try:
            await run_in_threadpool(controller.store.ping)
        except Exception as exc:
            return JSONResponse({"status": "store unavailable", "detail": str(exc)}, status_code=503)
        if not controller.source.ready:
            return JSONResponse({"status": "inventory not synced"}, status_code=503)
        if not controller.review_ready():  # the live review is built in a worker thread; /healthz answers meanwhile
            return JSONResponse({"status": "building the approved policies (the live review)"}, status_code=503)
        return {"status": "ready"}

    return app
