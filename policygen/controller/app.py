"""The controller's HTTP API (FastAPI). Thin: every verb is a Controller method.

Auth: `Authorization: Bearer <token>`, tokens from `--token-file` (one a line). Writes (ingest,
approve, apply, modes) always need a token: 401 without one, 403 with a wrong one. Reads (graph,
policies, diff, impact, alerts) are open unless `read_auth` is set; /metrics, /healthz and /readyz
are always open.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from netguard.errors import InputError
from policygen.controller.ingest import BODY_SCHEMA, EDGE_BODY_SCHEMA, BatchError
from policygen.controller.service import Controller
from policygen.controller.settings import Settings, read_tokens

log = logging.getLogger("netguard.controller")


class Approval(BaseModel):
    workload: str = Field(description="the workload's key, namespace/Kind/name", examples=["default/Deployment/reviews-v1"])
    decision: str = Field(description="approved, rejected or pending", examples=["approved"])


class ModeRequest(BaseModel):
    mode: str = Field(description="learn, monitor or protect", examples=["monitor"])


class ApplyRequest(BaseModel):
    dry_run: bool = Field(False, description="only the server-side dry run; nothing is changed")
    remove: bool = Field(False, description="remove the policies netguard applied (same as DELETE)")


class Accepted(BaseModel):
    accepted: int = Field(description="flow (or edge) records stored durably")
    connections: int = Field(description="new connections among them (Hubble reply packets are not)")


def _check_token(request: Request, tokens: tuple[str, ...]) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    token = token.strip()
    if not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
        raise HTTPException(403, "invalid token")


class TokenSource:
    """The accepted tokens; the token file is read again when it changes (a rotated Kubernetes Secret),
    looked at no more than once a second. An unreadable or empty new version keeps the old tokens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = settings.tokens
        self._checked = time.monotonic()
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return os.stat(self.settings.token_file).st_mtime_ns if self.settings.token_file else 0
        except OSError:
            return 0

    def current(self) -> tuple[str, ...]:
        if self.settings.token_file and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            mtime = self._stat()
            if mtime and mtime != self._mtime:
                self._mtime = mtime
                try:
                    self.tokens = read_tokens(self.settings.token_file)
                    log.info("token file changed: %d tokens", len(self.tokens))
                except InputError as exc:
                    log.error("token file: %s; keeping the previous tokens", exc)
        return self.tokens


def create_app(controller: Controller) -> FastAPI:
    settings = controller.settings
    metrics = controller.metrics
    tokens = TokenSource(settings)
    app = FastAPI(
        title="netguard controller",
        version="1",
        description="Ingest of flows from node agents; the learned graph; generated NetworkPolicies to review, "
                    "approve and apply; lateral-movement alerts.",
    )
    app.state.controller = controller
    if settings.cors_origins:  # for a browser page served elsewhere (netguard ui) calling this API directly
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["Authorization", "Content-Type"])

    def write_auth(request: Request) -> None:
        if not settings.no_auth:
            _check_token(request, tokens.current())

    def read_auth(request: Request) -> None:
        if settings.read_auth and not settings.no_auth:
            _check_token(request, tokens.current())

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post(
        "/api/v1/flows",
        response_model=Accepted,
        dependencies=[Depends(write_auth)],
        summary="Ingest a batch of flow records from a node agent",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BODY_SCHEMA}}}},
        responses={401: {"description": "no bearer token"}, 403: {"description": "wrong token"},
                   413: {"description": "too large"}, 422: {"description": "invalid batch; nothing stored"},
                   503: {"description": "the store failed; nothing acknowledged, retry"}},
    )
    async def post_flows(request: Request) -> Any:
        return await _ingest(request, controller.parse, controller.prepare)

    @app.post(
        "/api/v1/edges",
        response_model=Accepted,
        dependencies=[Depends(write_auth)],
        summary="Ingest the edges a node agent aggregated over one interval",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": EDGE_BODY_SCHEMA}}}},
        responses={401: {"description": "no bearer token"}, 403: {"description": "wrong token"},
                   413: {"description": "too large"}, 422: {"description": "invalid batch; nothing stored"},
                   503: {"description": "the store failed; nothing acknowledged, retry"}},
    )
    async def post_edges(request: Request) -> Any:
        return await _ingest(request, controller.parse_edges, controller.prepare_edges)

    async def _ingest(request: Request, parse: Any, prepare: Any) -> Any:
        """One batch, flows or edges: bounded read, strict parse, enrich and classify, answer after the commit."""
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
        prepared = prepare(batch, body)
        try:
            await asyncio.wrap_future(controller.store.submit(prepared.write))
        except Exception as exc:
            controller.failed(prepared)
            log.error("store: batch from %s not stored: %s", batch.agent, exc)
            return JSONResponse({"detail": f"store error, nothing stored: {exc}"}, status_code=503)
        controller.committed(prepared)
        metrics.latency.observe(time.perf_counter() - started)
        return {"accepted": batch.records, "connections": batch.connections}

    @app.get("/api/v1/graph", dependencies=[Depends(read_auth)], summary="The workload graph with verdicts")
    async def graph() -> Any:
        return await run_in_threadpool(controller.graph_json)

    @app.get("/api/v1/policies", dependencies=[Depends(read_auth)], summary="Generated NetworkPolicies with status")
    async def policies() -> Any:
        return await run_in_threadpool(controller.policies_json)

    @app.get("/api/v1/policies/diff", dependencies=[Depends(read_auth)], summary="Generated vs the cluster's policies")
    async def diff() -> Any:
        return await run_in_threadpool(controller.diff_json)

    @app.get("/api/v1/policies/impact", dependencies=[Depends(read_auth)],
             summary="Observed edges the current and the candidate policies deny")
    async def impact() -> Any:
        return await run_in_threadpool(controller.impact_json)

    @app.post("/api/v1/policies/approve", dependencies=[Depends(write_auth)], summary="Approve or reject a workload's policy")
    async def approve(body: Approval) -> Any:
        return await run_in_threadpool(controller.approve, body.workload, body.decision)

    @app.post("/api/v1/policies/apply", dependencies=[Depends(write_auth)],
              summary="Server-side apply the approved policies of protect-mode namespaces (dry run first)")
    async def apply(body: ApplyRequest | None = None) -> Any:
        body = body or ApplyRequest(dry_run=False, remove=False)
        return await run_in_threadpool(lambda: controller.apply(remove=body.remove, dry_run_only=body.dry_run))

    @app.delete("/api/v1/policies/apply", dependencies=[Depends(write_auth)],
                summary="Remove the NetworkPolicies netguard applied")
    async def unapply() -> Any:
        return await run_in_threadpool(lambda: controller.apply(remove=True))

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

    @app.get("/readyz", summary="Readiness: the store answers and the inventory has synced")
    async def readyz() -> Any:
        try:
            await run_in_threadpool(controller.store.ping)
        except Exception as exc:
            return JSONResponse({"status": "store unavailable", "detail": str(exc)}, status_code=503)
        if not controller.source.ready:
            return JSONResponse({"status": "inventory not synced"}, status_code=503)
        return {"status": "ready"}

    return app
