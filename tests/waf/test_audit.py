"""The one audit-log schema (waf/audit.py): what the sidecar writes is what the map reads."""

from __future__ import annotations

import io
import json

import pytest

from waf import Request, inspect
from waf.audit import (
    Action,
    AuditLogError,
    AuditRecord,
    AuditWriter,
    PodIdentity,
    parse_audit_lines,
)


def _blocked_record() -> AuditRecord:
    req = Request.make("GET", "/search?q=1' OR 1=1--", {"Host": "shop.example:8080"}, client="203.0.113.7")
    verdict = inspect(req)
    assert verdict.blocked
    return AuditRecord.from_verdict("r1", req, verdict, Action.BLOCK, 403)


def test_a_record_written_by_the_writer_reads_back_equal_with_the_pods_identity(tmp_path):
    path = tmp_path / "audit.jsonl"
    who = PodIdentity("front-7d9-abcde", "shop", "Deployment/front")
    writer = AuditWriter(str(path), identity=who)
    record = _blocked_record()
    writer.write(record)
    writer.close()
    (back,) = parse_audit_lines(path.read_text().splitlines())
    assert back == record.with_identity(who)
    assert back.blocked and back.host == "shop.example:8080" and back.path == "/search"
    assert back.rule_ids and back.rule_ids == tuple(m.rule_id for m in back.matches)
    assert (back.pod, back.namespace, back.workload_name) == ("front-7d9-abcde", "shop", "front")


def test_identity_comes_from_the_environment_injection_sets():
    env = {"NETGUARD_WAF_POD_NAME": "p", "NETGUARD_WAF_POD_NAMESPACE": "ns", "NETGUARD_WAF_WORKLOAD": "StatefulSet/db"}
    assert PodIdentity.from_env(env) == PodIdentity("p", "ns", "StatefulSet/db")


def test_the_older_shape_still_reads():
    old = {"time": "2026-09-21T10:00:00Z", "request_id": "a", "blocked": True, "categories": "xss",
           "path": "/x", "workload": "default/Deployment/productpage-v1"}  # fmt: skip
    record = AuditRecord.from_dict(old)
    assert record.action == Action.BLOCK and record.categories == ("xss",) and record.uri == "/x"
    assert (record.namespace, record.workload) == ("default", "Deployment/productpage-v1")
    assert record.time > 0


def test_a_bad_line_names_the_line_and_the_field_and_other_output_is_skipped():
    lines = ["netguard waf: listening on 127.0.0.1:1", json.dumps({"request_id": "a", "action": "maybe"})]
    with pytest.raises(AuditLogError, match=r"log:2: action: expected one of"):
        list(parse_audit_lines(lines, "log"))
    with pytest.raises(AuditLogError, match=r"log:1: not a JSON line"):
        list(parse_audit_lines(io.StringIO("{nope\n"), "log"))
