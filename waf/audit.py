"""The WAF audit log: one record type, one writer (the sidecar), one reader (the map, the demo, tests).

A record is one JSON object per line. The sidecar writes a line for every request that scored (block or,
in detect mode, would-block), failed upstream, or was refused before inspection (body over the window).
Who was protected comes from the pod's environment, which injection sets from the downward API:
`NETGUARD_WAF_POD_NAME`, `NETGUARD_WAF_POD_NAMESPACE` and `NETGUARD_WAF_WORKLOAD` (`Kind/name` of the
pod's top owner, e.g. `Deployment/frontend`).

    writer = AuditWriter("-", identity=PodIdentity.from_env())
    writer.write(AuditRecord.from_verdict(request_id, request, verdict, Action.BLOCK, 403))
    for record in read_audit_log("waf-audit.jsonl"): record.blocked, record.rule_ids

The reader also accepts the older shape (`blocked`, `path`, `workload` as `ns/Kind/name`) so logs kept
from before this schema still show on the map. Like the rest of `waf/`, this imports nothing from
netguard's other packages.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from waf._engine import Match, Verdict
from waf._request import Request

URI_LIMIT = 2048
ENV_POD = "NETGUARD_WAF_POD_NAME"
ENV_NAMESPACE = "NETGUARD_WAF_POD_NAMESPACE"
ENV_WORKLOAD = "NETGUARD_WAF_WORKLOAD"


class Action(StrEnum):
    """What the sidecar did with the request."""

    BLOCK = "block"  # answered 403 (or 413: body over the inspection window)
    DETECT = "detect"  # would have blocked; detect mode forwarded it
    PASS = "pass"  # scored under the threshold and forwarded
    UPSTREAM_ERROR = "upstream_error"  # forwarded, the app failed (502/504)


@dataclass(frozen=True, slots=True)
class PodIdentity:
    """Which pod (and workload) the sidecar protects; empty strings when not known."""

    pod: str = ""
    namespace: str = ""
    workload: str = ""  # `Kind/name` of the top owner, or `name`

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PodIdentity:
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_POD, ""), env.get(ENV_NAMESPACE, ""), env.get(ENV_WORKLOAD, ""))


@dataclass(frozen=True, slots=True)
class AuditMatch:
    """One rule that matched. `decode_chain` names the decoding layers that exposed the value
    (e.g. `("url", "base64")`), when the engine reports them."""

    rule_id: int
    category: str
    location: str = ""
    matched: str = ""
    score: int = 0
    paranoia: int = 1
    msg: str = ""
    decode_chain: tuple[str, ...] = ()

    @classmethod
    def from_match(cls, m: Match) -> AuditMatch:
        chain = getattr(m, "decode_chain", ())  # the engine may carry it; the record has room for it
        return cls(m.rule_id, m.category, m.location, m.matched, m.score, m.paranoia, m.msg, tuple(chain))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the audit log."""

    time: float
    request_id: str
    action: Action
    status: int
    method: str = ""
    uri: str = ""
    host: str = ""
    client: str = ""
    rule_ids: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    score: int = 0
    threshold: int = 0
    pod: str = ""
    namespace: str = ""
    workload: str = ""
    matches: tuple[AuditMatch, ...] = ()
    reason: str = ""
    body_truncated: bool = False
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # unknown fields read back

    @property
    def blocked(self) -> bool:
        return self.action == Action.BLOCK

    @property
    def path(self) -> str:
        """The URI without its query string."""
        return self.uri.split("?", 1)[0]

    @property
    def workload_name(self) -> str:
        """The workload's name without its kind (`Deployment/frontend` -> `frontend`)."""
        return self.workload.rsplit("/", 1)[-1]

    @classmethod
    def from_verdict(
        cls, request_id: str, req: Request, verdict: Verdict, action: Action, status: int, **more: Any
    ) -> AuditRecord:
        return cls(
            time=time.time(),
            request_id=request_id,
            action=action,
            status=status,
            method=req.method,
            uri=req.uri[:URI_LIMIT],
            host=req.header("host") or "",
            client=req.client,
            rule_ids=tuple(m.rule_id for m in verdict.matches),
            categories=tuple(verdict.categories),
            score=verdict.score,
            threshold=verdict.threshold,
            matches=tuple(AuditMatch.from_match(m) for m in verdict.matches),
            body_truncated=req.body_truncated,
            **more,
        )

    def with_identity(self, who: PodIdentity) -> AuditRecord:
        """The record with the pod's identity filled in where the record has none."""
        return replace(
            self,
            pod=self.pod or who.pod,
            namespace=self.namespace or who.namespace,
            workload=self.workload or who.workload,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line: empty optional fields are left out, unknown ones kept."""
        out = asdict(self)
        extra = out.pop("extra")
        out["action"] = str(self.action)
        out["matches"] = [{k: v for k, v in m.items() if v not in ("", ())} for m in out["matches"]]
        kept = {k: v for k, v in out.items() if k in _ALWAYS or v not in ("", (), [], 0, 0.0, False)}
        return {**extra, **kept}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditRecord:
        """Read one record; raises ValueError naming the field that is wrong."""
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        extra = {k: v for k, v in d.items() if k not in known and k not in _LEGACY}
        action = _action(d)
        uri = _text(d, "uri") or _text(d, "path")
        namespace, workload = _text(d, "namespace"), _text(d, "workload")
        if not namespace and workload.count("/") >= 1 and "workload" in d and _legacy_workload(workload):
            namespace, _, workload = workload.partition("/")  # older `ns/name` or `ns/Kind/name`
        matches = tuple(_match(m) for m in _list(d, "matches"))
        rule_ids = tuple(int(r) for r in _list(d, "rule_ids")) or tuple(m.rule_id for m in matches)
        categories = d.get("categories") or ()
        if isinstance(categories, str):
            categories = (categories,)
        return cls(
            time=_time(d.get("time")),
            request_id=_text(d, "request_id"),
            action=action,
            status=_int(d, "status", 403 if action == Action.BLOCK else 0),
            method=_text(d, "method"),
            uri=uri,
            host=_text(d, "host"),
            client=_text(d, "client"),
            rule_ids=rule_ids,
            categories=tuple(str(c) for c in categories),
            score=_int(d, "score", 0),
            threshold=_int(d, "threshold", 0),
            pod=_text(d, "pod"),
            namespace=namespace,
            workload=workload,
            matches=matches,
            reason=_text(d, "reason"),
            body_truncated=bool(d.get("body_truncated", False)),
            duration_ms=float(d.get("duration_ms") or 0.0),
            extra=extra,
        )


_LEGACY = {"blocked", "path"}
_ALWAYS = {"time", "request_id", "action", "status"}
_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "ReplicationController"}


def _legacy_workload(value: str) -> bool:
    """`ns/name` or `ns/Kind/name` (the old one-field form), not `Kind/name`."""
    parts = value.split("/")
    return len(parts) == 3 or (len(parts) == 2 and parts[0] not in _KINDS)


def _action(d: Mapping[str, Any]) -> Action:
    if "action" in d:
        try:
            return Action(str(d["action"]))
        except ValueError:
            raise ValueError(f"action: expected one of {', '.join(Action)}, got {d['action']!r}") from None
    return Action.BLOCK if d.get("blocked") else Action.PASS


def _text(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    return "" if value is None else str(value)


def _int(d: Mapping[str, Any], key: str, default: int) -> int:
    value = d.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected a number, got {value!r}") from None


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list")
    return value


def _match(m: Any) -> AuditMatch:
    if not isinstance(m, dict) or "rule_id" not in m:
        raise ValueError("matches: expected objects with a rule_id")
    return AuditMatch(
        rule_id=int(m["rule_id"]),
        category=str(m.get("category", "")),
        location=str(m.get("location", "")),
        matched=str(m.get("matched", "")),
        score=int(m.get("score") or 0),
        paranoia=int(m.get("paranoia") or 1),
        msg=str(m.get("msg", "")),
        decode_chain=tuple(str(x) for x in m.get("decode_chain") or ()),
    )


def _time(value: Any) -> float:
    """Epoch seconds from a number or an RFC 3339 string; 0 when absent."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return float(value)
        except ValueError:
            from datetime import datetime

            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise ValueError(f"time: expected epoch seconds or RFC 3339, got {value!r}") from None
    return 0.0


class AuditWriter:
    """Appends records as JSON lines to a file, or stdout for `-`; None writes nothing.
    Every record gets the pod's identity (from the environment unless given). A file gets each record in
    one `write` on an O_APPEND descriptor, so the workers of one sidecar (waf/_workers.py) appending to
    the same file never interleave their lines."""

    def __init__(self, target: str | None, identity: PodIdentity | None = None) -> None:
        self.target = target
        self.identity = identity if identity is not None else PodIdentity.from_env()
        self._fh: TextIO | None = None
        self._fd: int | None = None
        if target == "-":
            self._fh = sys.stdout
        elif target is not None:
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, record: AuditRecord) -> None:
        if self._fd is not None:
            os.write(self._fd, (record.with_identity(self.identity).to_json() + "\n").encode("utf-8"))
        elif self._fh is not None:
            self._fh.write(record.with_identity(self.identity).to_json() + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class AuditLogError(ValueError):
    """A line that is not an audit record; `source` is `file:line`."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


def parse_audit_lines(lines: Iterable[str], source: str = "<audit log>") -> Iterator[AuditRecord]:
    """Records from JSON lines. Lines that are not JSON objects (a sidecar's stdout also carries its
    start-up messages when the log is `-`) are skipped only when they do not start with `{`."""
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if not text.startswith("{"):
            continue
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            yield AuditRecord.from_dict(data)
        except json.JSONDecodeError as exc:
            raise AuditLogError(f"{source}:{n}", f"not a JSON line ({exc.msg})") from exc
        except (ValueError, TypeError) as exc:
            raise AuditLogError(f"{source}:{n}", str(exc)) from exc


def read_audit_log(path: str | Path) -> list[AuditRecord]:
    """Every record of an audit log file; AuditLogError on a bad line, OSError when unreadable."""
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace") as fh:
        return list(parse_audit_lines(fh, str(path)))
