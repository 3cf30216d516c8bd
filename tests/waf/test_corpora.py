"""Regression guards on data: the clean corpus stays clean, a CRS sample stays detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waf import Engine, Request

DATA = Path(__file__).parent / "data"
ENGINE = Engine()


def _load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).open(encoding="utf-8")]


@pytest.mark.parametrize(("name", "minimum"), [("clean_corpus.jsonl", 2000), ("clean_holdout.jsonl", 800)])
def test_clean_corpus_false_positive_rate_is_at_most_half_a_percent(name, minimum):
    rows = _load(name)
    assert len(rows) >= minimum
    blocked = []
    for d in rows:
        body = d.get("body")
        raw = None if body is None else body.encode(d.get("body_encoding", "utf-8"))
        v = ENGINE.inspect(Request.make(d["method"], d["uri"], d.get("headers", {}), raw))
        if v.blocked:
            blocked.append((d["id"], [m.rule_id for m in v.matches]))
    assert len(blocked) <= 0.005 * len(rows), blocked[:10]


def test_crs_attack_sample_is_detected():
    rows = _load("crs_sample.jsonl")
    missed = []
    for d in rows:
        headers = list(d["headers"].items())
        if d["body"] is not None and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        if not ENGINE.inspect(Request.make(d["method"], d["uri"], headers, d["body"])).blocked:
            missed.append(d["id"])
    assert len(missed) <= 0.05 * len(rows), missed
