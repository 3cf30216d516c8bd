"""The mutating admission webhook: AdmissionReview v1 in, the injection as a base64 JSONPatch out.

`review()` is the whole protocol as a pure function; `app()` is the small Starlette app that serves it
(POST /mutate, GET /healthz). The webhook always allows: it only ever adds the sidecar, and a pod it does
not understand is admitted unchanged with the reason in the response's warnings. A request that is not an
AdmissionReview v1 at all gets HTTP 400 with a JSON body saying what is wrong.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from waf.injection.mutation import inject_pod
from waf.injection.patch import json_patch
from waf.injection.settings import DEFAULTS, Settings

API_VERSION = "admission.k8s.io/v1"
MAX_BODY = 8 * 1024 * 1024  # the API server sends at most a few MiB
WARNING_PREFIX = "netguard-waf: "

log = logging.getLogger("netguard.webhook")


class ReviewError(ValueError):
    """The request is not an AdmissionReview v1 this webhook can answer."""


def review(body: Any, defaults: Settings = DEFAULTS) -> dict[str, Any]:
    """The AdmissionReview response for a parsed request body; ReviewError when it is not a review."""
    if not isinstance(body, dict):
        raise ReviewError("the body is not a JSON object")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != "AdmissionReview":
        got = f"{body.get('apiVersion')}/{body.get('kind')}"
        raise ReviewError(f"want apiVersion {API_VERSION} kind AdmissionReview, got {got}")
    request = body.get("request")
    if not isinstance(request, dict):
        raise ReviewError("the AdmissionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("the AdmissionReview request has no uid")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    warnings = _mutate(request, defaults, response)
    if warnings:
        response["warnings"] = [WARNING_PREFIX + w for w in warnings]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def _mutate(request: dict[str, Any], defaults: Settings, response: dict[str, Any]) -> list[str]:
    kind = request.get("kind") or {}
    if not isinstance(kind, dict) or (kind.get("group"), kind.get("kind")) != ("", "Pod"):
        name = kind.get("kind") if isinstance(kind, dict) else kind
        return [f"only Pods are injected, not {name}; admitted as is"]
    if request.get("subResource"):
        return []
    if request.get("operation") != "CREATE":
        return []  # containers of a running pod cannot change: injection happens at creation only
    pod = request.get("object")
    if not isinstance(pod, dict):
        return ["the request carries no pod object; admitted as is"]
    namespace = request.get("namespace") if isinstance(request.get("namespace"), str) else None
    outcome = inject_pod(pod, defaults=defaults, namespace=namespace)
    if outcome.changed:
        patch = json_patch(pod, outcome.pod)
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    return list(outcome.warnings)


def app(
    defaults: Settings = DEFAULTS, cluster_version: Callable[[], tuple[int, int] | None] | None = None
) -> Starlette:
    """`cluster_version`: the API server's version as last asked (VersionWatch), for --native-sidecar auto."""

    async def mutate(request: Request) -> JSONResponse:
        started = time.perf_counter()
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, f"the body is larger than {MAX_BODY} bytes")
        settings = defaults if cluster_version is None else replace(defaults, cluster_version=cluster_version())
        try:
            answer = review(json.loads(body), settings)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, f"the body is not JSON: {exc}")
        except ReviewError as exc:
            return _error(400, str(exc))
        result = answer["response"]
        log.info(
            json.dumps(
                {
                    "event": "review",
                    "uid": result["uid"],
                    "injected": "patch" in result,
                    "warnings": result.get("warnings", []),
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
            )
        )
        return JSONResponse(answer)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/mutate", mutate, methods=["POST"]), Route("/healthz", healthz)])


def _error(status: int, message: str) -> JSONResponse:
    log.warning(json.dumps({"event": "bad-request", "status": status, "error": message}))
    return JSONResponse({"error": message}, status_code=status)
