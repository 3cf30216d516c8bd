"""Diff a candidate policy set against the NetworkPolicies already in the cluster (the inventory)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from netguard.netpol import NetworkPolicy
from policygen.render import dump_yaml


@dataclass(frozen=True)
class PolicyChange:
    ref: str  # namespace/name
    status: str  # added | changed | unchanged | cluster-only
    diff: str = ""  # unified diff of the canonical YAML

    @property
    def differs(self) -> bool:
        return self.status in ("added", "changed")


def canonical(policy: NetworkPolicy) -> str:
    """The policy's YAML without status, comments or source: what the API server keeps of the spec."""
    return dump_yaml(policy.to_dict())


def diff_policies(current: Iterable[NetworkPolicy], candidate: Iterable[NetworkPolicy]) -> list[PolicyChange]:
    now = {p.ref: p for p in current}
    new = {p.ref: p for p in candidate}
    changes = []
    for ref in sorted(set(now) | set(new)):
        if ref not in now:
            text = canonical(new[ref])
            lines = difflib.unified_diff([], text.splitlines(True), "/dev/null", f"b/{ref}")
            changes.append(PolicyChange(ref, "added", "".join(lines)))
        elif ref not in new:
            changes.append(PolicyChange(ref, "cluster-only"))
        else:
            a, b = canonical(now[ref]), canonical(new[ref])
            if a == b:
                changes.append(PolicyChange(ref, "unchanged"))
            else:
                lines = difflib.unified_diff(a.splitlines(True), b.splitlines(True), f"a/{ref}", f"b/{ref}")
                changes.append(PolicyChange(ref, "changed", "".join(lines)))
    return changes
