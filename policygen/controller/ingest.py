"""Strict validation of one ingest batch: all of it is good, or none of it is stored.

Body: `{"agent": "<node name>", "flows": [<record>, ...]}` where each record is a native flow record
(as `netguard.flows.flow_to_record` writes it) or a Hubble record. The first bad record names the
batch: `flows[17]: dst_port: invalid port 'x'`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from netguard.errors import InputError
from netguard.flows import ReadStats, parse_record
from netguard.model import Flow


class BatchError(Exception):
    """Why a batch was refused (422), or too large (413)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Batch:
    agent: str
    records: int
    flows: list[Flow]  # the new connections among the records (Hubble replies etc. are not)
    stats: ReadStats


BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["agent", "flows"],
    "additionalProperties": False,
    "properties": {
        "agent": {"type": "string", "minLength": 1, "maxLength": 253, "description": "the node name of the agent"},
        "flows": {
            "type": "array",
            "description": "native flow records (time, src_ip, src_port, dst_ip, dst_port, protocol, bytes?, packets?, "
                           "node?, dst_pod_ip?, dst_pod_port?) or Hubble flow records",
            "items": {"type": "object"},
        },
    },
}


def parse_batch(body: bytes, max_records: int = 50_000) -> Batch:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchError(f"body: not JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(doc, dict):
        raise BatchError(f"body: expected a JSON object, got {type(doc).__name__}")
    extra = set(doc) - {"agent", "flows"}
    if extra:
        raise BatchError(f"body: unknown keys {', '.join(sorted(extra))} (expected agent, flows)")
    agent = doc.get("agent")
    if not isinstance(agent, str) or not agent or len(agent) > 253:
        raise BatchError("agent: expected the node name (a non-empty string)")
    records = doc.get("flows")
    if not isinstance(records, list):
        raise BatchError("flows: expected a list of flow records")
    if len(records) > max_records:
        raise BatchError(f"flows: {len(records)} records; at most {max_records} per batch", status=413)
    stats = ReadStats()
    flows: list[Flow] = []
    append = flows.append
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise BatchError(f"flows[{i}]: expected a JSON object, got {type(record).__name__}")
        try:
            flow = parse_record(record, stats)
        except InputError as exc:
            raise BatchError(f"flows[{i}]: {exc.message}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # odd shapes inside Hubble records
            raise BatchError(f"flows[{i}]: malformed record ({exc})") from None
        if flow is not None:
            append(flow)
    stats.records = len(records)
    stats.flows = len(flows)
    return Batch(agent, len(records), flows, stats)
