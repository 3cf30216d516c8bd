"""bench/capture.py counts what it claims: records matched to connections one to one by 5-tuple."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from capture import match_records  # noqa: E402


def test_a_loss_as_large_as_the_failed_attempts_is_not_hidden():
    made = [(40000, 7000), (40001, 7000), (40002, 7000)]
    failed = [(40003, 7000), (40004, 7000)]
    records = [(40000, 7000), (40003, 7000), (40004, 7000)]  # two connections lost, two failed attempts seen
    assert match_records(records, made, failed) == {"seen": 1, "lost": 2, "extra": 0, "seen_failed": 2}


def test_a_reused_5_tuple_counts_as_often_as_it_was_made_and_a_stranger_is_extra():
    made = [(40000, 7000), (40000, 7000)]
    assert match_records([(40000, 7000)], made, []) == {"seen": 1, "lost": 1, "extra": 0, "seen_failed": 0}
    records = [(40000, 7000)] * 3 + [(50000, 7001)]
    assert match_records(records, made, []) == {"seen": 2, "lost": 0, "extra": 2, "seen_failed": 0}
