"""The UI's web app: the page (static files shipped in the package, no CDN), the review API from a
backend (local Review or the controller), and what only the UI adds: WAF blocks, exports, the
policy bundle."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from netguard.errors import InputError
from visualizer.backends import API_GET_PATTERN, API_GETS, Backend, BackendError, load_json
from visualizer.waflog import read_waf_log, summarize_blocks
from waf.audit import AuditRecord

STATIC = resources.files("visualizer") / "static"
EXPORT_TYPES = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "json": "application/json",
    "graphml": "application/xml",
    "dot": "text/vnd.graphviz",
}
BUNDLE_STATUSES = ("approved", "all")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def policy_bundle(policies: dict, status: str = "approved") -> bytes:
    """A zip of the generated policies as a folder layout for Git: `<namespace>/<workload>.yaml` and a
    kustomization.yaml listing them."""
    chosen = [p for p in policies.get("policies", []) if status == "all" or p.get("status") == "approved"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        paths = []
        for p in sorted(chosen, key=lambda p: p["path"]):
            zf.writestr(f"netguard-policies/{p['path']}", p["yaml"])
            paths.append(p["path"])
        resources_yaml = "".join(f"  - {path}\n" for path in paths) or "  []\n"
        zf.writestr(
            "netguard-policies/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + resources_yaml,
        )
    return buf.getvalue()


def create_app(
    backend: Backend,
    *,
    waf_records: list[AuditRecord] | None = None,
    waf_logs: Sequence[str | Path] = (),
    title: str = "netguard",
) -> FastAPI:
    """`waf_records`: WAF audit records shown as they are; `waf_logs`: audit log files re-read on each
    request for the map, so blocks the sidecar writes later show too."""
    waf_shown = waf_records is not None or bool(waf_logs)

    def current_waf_records() -> list[AuditRecord]:
        return list(waf_records or []) + [r for path in waf_logs for r in read_waf_log(path)]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await backend.close()

    app = FastAPI(title=f"{title} ui", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.backend = backend

    @app.exception_handler(BackendError)
    async def _backend_error(request: Request, exc: BackendError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True, "mode": backend.mode}

    @app.get("/ui/info")
    async def info() -> dict:
        return {
            "mode": backend.mode,
            "controller": getattr(backend, "url", None),
            "title": title,
            "waf_log": waf_shown,
        }

    @app.get("/api/v1/{path:path}")
    async def api_get(path: str, request: Request) -> Any:
        """The review API, passed to the backend with its query (`limit` and `continue` of a page, ...)."""
        if path not in API_GETS and not API_GET_PATTERN.fullmatch(path):
            return _error(404, f"no such path: /api/v1/{path}")
        data = await backend.get(path, dict(request.query_params))
        if isinstance(data, bytes | bytearray):
            return Response(bytes(data), media_type="application/json")
        return data

    @app.post("/api/v1/policies/approve")
    async def approve(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "expected a JSON body")
        return await backend.post("policies/approve", body, request.headers.get("authorization"))

    @app.post("/api/v1/policies/apply")
    async def apply(request: Request) -> Any:
        """Dry run ({"dry_run": true}) or apply, with the browser's write token when it sent one."""
        try:
            body = await request.json()
        except ValueError:
            body = {}
        return await backend.post("policies/apply", body, request.headers.get("authorization"))

    @app.delete("/api/v1/policies/apply")
    async def remove(request: Request) -> Any:
        return await backend.delete("policies/apply", request.headers.get("authorization"))

    @app.get("/ui/events")
    async def events() -> StreamingResponse:
        return StreamingResponse(backend.events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/ui/waf")
    async def waf() -> Any:
        if not waf_shown:
            return {"targets": {}, "top_rules": [], "unmatched": 0, "blocked": 0, "requests": 0}
        graph = load_json(await backend.get("graph"))
        try:
            records = await run_in_threadpool(current_waf_records)
        except InputError as exc:
            return _error(422, str(exc))
        return summarize_blocks(records, graph)

    @app.get("/ui/export.{fmt}")
    async def export(fmt: str, verdict: str = "current") -> Response:
        from visualizer.export import BINARY_EXPORTERS, EXPORTERS, RenderError, graph_from_dict

        if fmt not in EXPORT_TYPES:
            return _error(404, f"unknown export format {fmt!r}; one of {', '.join(EXPORT_TYPES)}")
        if verdict not in ("current", "candidate"):
            return _error(400, "verdict must be current or candidate")
        data = load_json(await backend.get("graph"))
        graph = graph_from_dict(data, "verdict" if verdict == "current" else "candidate_verdict")
        exporter = BINARY_EXPORTERS.get(fmt) or EXPORTERS[fmt]
        try:
            body = await run_in_threadpool(exporter, graph)
        except RenderError as exc:
            return _error(503, str(exc))
        return Response(
            body, media_type=EXPORT_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="netguard-graph.{fmt}"'}
        )

    @app.get("/ui/policies.zip")
    async def bundle(status: str = "approved") -> Response:
        if status not in BUNDLE_STATUSES:
            return _error(400, f"status must be one of {', '.join(BUNDLE_STATUSES)}")
        policies = load_json(await backend.get("policies"))
        return Response(
            policy_bundle(policies, status),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="netguard-policies-{status}.zip"'},
        )

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
