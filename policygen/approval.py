"""Approvals bound to the exact text that was reviewed.

A decision (approved, rejected) is recorded with the SHA-256 digest of the policy's canonical text (the
policy object as YAML, without the comments that explain it: those change with traffic counts while the
policy does not), with who made it (the name of the token used) and when. When new traffic changes the
generated policy, its digest changes and the decision no longer holds: the policy is pending again, and
the reviewer sees the diff against the text that was approved. `apply` applies only policies whose
current digest is the approved one. Pure functions: the controller stores the decisions.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from netguard.netpol import NetworkPolicy
from policygen.render import dump_yaml


class Decision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class AuditAction(StrEnum):
    """What the audit trail records."""

    APPROVE = "approve"
    REJECT = "reject"
    RESET = "reset"  # back to pending by hand
    APPLY = "apply"
    DELETE = "delete"


DECISION_ACTION = {Decision.APPROVED: AuditAction.APPROVE, Decision.REJECTED: AuditAction.REJECT,
                   Decision.PENDING: AuditAction.RESET}  # fmt: skip


def canonical_text(policy: NetworkPolicy) -> str:
    """The text an approval is bound to: the policy object as deterministic YAML, no comments."""
    return dump_yaml(policy.to_dict())


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Approval:
    """A stored decision about one workload's policy, bound to the digest of the text decided on."""

    workload: str
    decision: Decision
    digest: str = ""  # empty: a decision stored before digests (it binds to nothing, so it is pending)
    text: str = ""
    who: str = ""
    when: float = 0.0


@dataclass(frozen=True, slots=True)
class ReviewState:
    """Where one generated policy stands: its status now, and the approval it had if its text moved."""

    status: Decision
    digest: str
    decided: Approval | None = None
    changed: bool = False  # decided on another text: back to pending
    diff: str = ""  # the decided text -> the current text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": str(self.status), "digest": self.digest, "changed_since_decision": self.changed}
        if self.decided is not None:
            out["decision"] = {"decision": str(self.decided.decision), "digest": self.decided.digest,
                               "by": self.decided.who, "at": self.decided.when}  # fmt: skip
        if self.diff:
            out["decided_diff"] = self.diff
        return out


def review_state(policy: NetworkPolicy, approval: Approval | None, text: str | None = None) -> ReviewState:
    """`text`: canonical_text(policy) when the caller keeps it (the controller does, per policy object)."""
    text = canonical_text(policy) if text is None else text
    current = digest(text)
    if approval is None or approval.decision == Decision.PENDING:
        return ReviewState(Decision.PENDING, current, approval)
    if approval.digest == current:
        return ReviewState(approval.decision, current, approval)
    diff = "".join(difflib.unified_diff(approval.text.splitlines(keepends=True), text.splitlines(keepends=True),
                                        f"{approval.decision} ({approval.who or 'unknown'})", "now"))  # fmt: skip
    return ReviewState(Decision.PENDING, current, approval, changed=True, diff=diff)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the review's audit trail: who did what to which policy, when."""

    at: float
    action: AuditAction
    workload: str
    ref: str = ""  # namespace/name of the NetworkPolicy (applies and deletes)
    digest: str = ""
    actor: str = ""
    detail: str = ""
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "action": str(self.action), "workload": self.workload, "ref": self.ref,
                "digest": self.digest, "by": self.actor, "detail": self.detail}  # fmt: skip
