"""Kubernetes label selectors: parse (with the API server's validation) and match.

A selector is a conjunction of requirements. `{}` matches everything; a missing (null) selector is
the caller's business (for a NetworkPolicy peer it means "not constrained on that axis").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netguard.errors import InputError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid label key, or None."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        return f"invalid label key prefix {prefix!r}"
    if not name or len(name) > 63 or not _NAME.match(name):
        return f"invalid label key {key!r}"
    return None


def label_value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"label value {value!r} is not a string"
    if len(value) > 63 or not _VALUE.match(value):
        return f"invalid label value {value!r}"
    return None


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    """A parsed metav1.LabelSelector. `match_labels` is kept apart for indexing and rendering."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.match_labels, self.expressions)))

    def __hash__(self) -> int:  # cached: selectors key the rule-merging dicts
        return self._hash  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple:  # never pickle the cached hash: it differs between processes
        return (Selector, (self.match_labels, self.expressions))

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(req.matches(labels) for req in self.expressions)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.expressions:
            out["matchExpressions"] = [
                {"key": r.key, "operator": r.operator, **({"values": sorted(r.values)} if r.values else {})}
                for r in self.expressions
            ]
        return out

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for r in self.expressions:
            if r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator.lower()} ({','.join(sorted(r.values))})")
            else:
                parts.append(("" if r.operator == "Exists" else "!") + r.key)
        return ",".join(parts) or "<all>"


def match_labels_selector(labels: Mapping[str, str]) -> Selector:
    return Selector(match_labels=tuple(sorted(labels.items())))


def parse_selector(raw: Any, *, source: str = "", obj: str = "", field: str = "selector") -> Selector:
    """Parse a LabelSelector dict, rejecting what the API server would reject."""

    def bad(message: str) -> InputError:
        return InputError(f"{field}: {message}", source=source, obj=obj)

    if raw is None:
        return Selector()
    if not isinstance(raw, dict):
        raise bad("must be a mapping with matchLabels/matchExpressions")
    unknown = set(raw) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise bad(f"unknown field {sorted(unknown)[0]!r}")
    match_labels = raw.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        raise bad("matchLabels must be a mapping")
    for key, value in match_labels.items():
        problem = label_key_problem(str(key)) or label_value_problem(value)
        if problem:
            raise bad(problem)
    requirements = []
    expressions = raw.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise bad("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, dict):
            raise bad("each matchExpressions entry must be a mapping")
        key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not isinstance(key, str) or label_key_problem(key):
            raise bad(f"invalid matchExpressions key {key!r}")
        if operator not in OPERATORS:
            raise bad(f"invalid operator {operator!r} (one of {', '.join(OPERATORS)})")
        if not isinstance(values, list):
            raise bad(f"values of {key!r} must be a list")
        if operator in ("In", "NotIn") and not values:
            raise bad(f"operator {operator} on {key!r} needs at least one value")
        if operator in ("Exists", "DoesNotExist") and values:
            raise bad(f"operator {operator} on {key!r} takes no values")
        for value in values:
            problem = label_value_problem(value)
            if problem:
                raise bad(problem)
        requirements.append(Requirement(key, operator, frozenset(values)))
    return Selector(tuple(sorted((str(k), v) for k, v in match_labels.items())), tuple(requirements))
