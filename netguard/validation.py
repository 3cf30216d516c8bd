"""Input validation worded as the Kubernetes API server words it.

Two kinds of untrusted input reach netguard: inventory files people write or edit (wrong shapes:
`containers: "x"`, labels as a list, a port as a word) and captures, which are data from the network
(a Hubble record's namespace `../../etc` would become a path, a label value `<img src=x>` a selector
the API server refuses). Both are checked here, once, as the API server would: DNS-1123 labels and
subdomains, label keys and values, ports, IP addresses, and the shape of each field netguard reads.
A problem is an InputError naming the field path: `spec.containers: Invalid value: "x": must be of
type array`. Checks of names are cached: a capture repeats the same few thousand names millions of times.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from netguard.errors import InputError
from netguard.selectors import label_key_problem, label_value_problem

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
PROTOCOLS = ("TCP", "UDP", "SCTP")


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def invalid(path: str, value: Any, detail: str) -> InputError:
    return InputError(f"{path}: Invalid value: {_shown(value)}: {detail}")


@functools.lru_cache(maxsize=1 << 16)
def dns_label_problem(value: str) -> str | None:
    """Why `value` is not an RFC 1123 label (a namespace name), or None."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character")
    return None


@functools.lru_cache(maxsize=1 << 16)
def dns_subdomain_problem(value: str) -> str | None:
    """Why `value` is not an RFC 1123 subdomain (most object names), or None."""
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character")
    return None


@functools.lru_cache(maxsize=1 << 16)
def label_problem(key: str, value: str) -> str | None:
    """Why `key=value` is not a valid label, or None (cached)."""
    return label_key_problem(key) or label_value_problem(value)


def check_namespace(value: Any, path: str = "metadata.namespace") -> str:
    if type(value) is not str:
        raise invalid(path, value, "must be of type string")
    if problem := dns_label_problem(value):
        raise invalid(path, value, problem)
    return value


def check_name(value: Any, path: str = "metadata.name") -> str:
    if type(value) is not str:
        raise invalid(path, value, "must be of type string")
    if problem := dns_subdomain_problem(value):
        raise invalid(path, value, problem)
    return value


def check_ip(value: Any, path: str) -> str:
    if type(value) is not str or not _is_ip(value):
        raise invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    return value


@functools.lru_cache(maxsize=1 << 16)
def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# --- the shape of the inventory objects netguard reads -------------------------------------------------
# A schema is a dict of field -> schema (an object), a one-item list [schema] (an array of them), or a
# leaf check: a function of the value returning what is wrong with it (or None). Fields not listed are
# not read, so not checked. Schemas are compiled once into nested closures, and a field's path is built
# only when something is wrong: 40,000 objects are checked in a fraction of their YAML parsing time.

Leaf = Callable[[Any], "str | None"]
Path_ = tuple[Any, str | int] | None  # (parent path, key): formatted only for a message


class _Problem(Exception):
    def __init__(self, detail: str, value: Any, suffix: str = "", unsupported: bool = False) -> None:
        self.detail, self.value, self.suffix, self.unsupported = detail, value, suffix, unsupported


def _format(path: Path_) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if type(key) is int else f".{key}")
    return "".join(reversed(parts)).lstrip(".") or "<object>"


def _string(value: Any) -> str | None:
    return None if type(value) is str else "must be of type string"


def _boolean(value: Any) -> str | None:
    return None if type(value) is bool else "must be of type boolean"


def _port(value: Any) -> str | None:
    if type(value) is not int:
        return "must be of type integer"
    return None if 1 <= value <= 65535 else "must be between 1 and 65535, inclusive"


@functools.lru_cache(maxsize=1 << 12)
def _port_name_problem(value: str) -> str | None:
    if value.isdigit() or (len(value) <= 15 and _PORT_NAME.fullmatch(value) and "--" not in value):
        return None
    return "must be a port number or an IANA_SVC_NAME (at most 15 lower case alphanumeric characters or '-')"


def _int_or_name(value: Any) -> str | None:
    if type(value) is int:
        return _port(value)
    if type(value) is str:
        return _port_name_problem(value)
    return "must be of type int-or-string"


def _protocol(value: Any) -> str | None:
    if value in PROTOCOLS:
        return None
    raise _Problem('supported values: "SCTP", "TCP", "UDP"', value, unsupported=True)


def _ip(value: Any) -> str | None:
    if type(value) is str and _is_ip(value):
        return None
    return "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _ip_or_none(value: Any) -> str | None:
    return None if value in ("", "None") else _ip(value)


def _namespace(value: Any) -> str | None:
    return "must be of type string" if type(value) is not str else dns_label_problem(value)


def _labels(value: Any) -> str | None:
    if type(value) is not dict:
        return "must be of type object"
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            raise _Problem("label keys and values must be strings", item, f"[{key}]")
        if problem := label_problem(key, item):
            raise _Problem(problem, item if "value" in problem else key, f"[{key}]")
    return None


def _string_map(value: Any) -> str | None:
    if type(value) is not dict:
        return "must be of type object"
    for key, item in value.items():
        if type(item) is not str:
            raise _Problem("must be of type string", item, f"[{key}]")
    return None


def required(check: Leaf) -> Leaf:
    """A field that must be present and not null."""

    def checked(value: Any) -> str | None:
        return check(value)

    checked.required = True  # type: ignore[attr-defined]
    return checked


_CONTAINER_PORT = {"containerPort": _port, "protocol": _protocol, "name": _int_or_name}
_CONTAINER = {"name": _string, "ports": [_CONTAINER_PORT]}
_POD_SPEC = {"containers": [_CONTAINER], "initContainers": [_CONTAINER], "hostNetwork": _boolean, "nodeName": _string}
_SELECTOR = {"matchLabels": _labels, "matchExpressions": [{"key": _string, "operator": _string, "values": [_string]}]}
_OWNER_REF = {"kind": required(_string), "name": required(_string), "controller": _boolean}
_META = {"name": _string, "namespace": _namespace, "labels": _labels, "ownerReferences": [_OWNER_REF]}
_TEMPLATE = {"metadata": {"labels": _labels}, "spec": _POD_SPEC}
_WORKLOAD_SPEC = {"selector": _SELECTOR, "template": _TEMPLATE}
_SERVICE_PORT = {"port": _port, "targetPort": _int_or_name, "protocol": _protocol, "name": _string}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": {"metadata": _META, "spec": _POD_SPEC, "status": {"podIP": _ip, "podIPs": [{"ip": _ip}], "hostIP": _ip}},
    "Deployment": {"metadata": _META, "spec": _WORKLOAD_SPEC},
    "StatefulSet": {"metadata": _META, "spec": _WORKLOAD_SPEC},
    "DaemonSet": {"metadata": _META, "spec": _WORKLOAD_SPEC},
    "ReplicaSet": {"metadata": _META, "spec": _WORKLOAD_SPEC},
    "Job": {"metadata": _META, "spec": _WORKLOAD_SPEC},
    "CronJob": {"metadata": _META, "spec": {"jobTemplate": {"spec": _WORKLOAD_SPEC}}},
    "Service": {"metadata": _META, "spec": {
        "selector": _string_map, "ports": [_SERVICE_PORT], "clusterIP": _ip_or_none, "clusterIPs": [_ip_or_none],
        "type": _string, "externalIPs": [_ip]},
        "status": {"loadBalancer": {"ingress": [{"ip": _ip}]}}},
    "Endpoints": {"metadata": _META, "subsets": [{"addresses": [{"ip": _ip}],
                                                  "ports": [{"port": _port, "protocol": _protocol, "name": _string}]}]},
    "EndpointSlice": {"metadata": _META, "endpoints": [{"addresses": [_string]}],  # FQDN slices hold names
                      "ports": [{"port": _port, "protocol": _protocol, "name": _string}]},
    "Namespace": {"metadata": {**_META, "name": _namespace}},
    "Node": {"metadata": _META, "status": {"addresses": [{"type": _string, "address": _string}]}},
    "NetworkPolicy": {"metadata": _META},
}
_REQUIRED_NAME = frozenset(SCHEMAS) - {"EndpointSlice"}
Walker = Callable[[Any, Path_], None]


def _compile(schema: Any) -> Walker:
    if isinstance(schema, dict):
        fields = {key: _compile(sub) for key, sub in schema.items()}
        needed = tuple(key for key, sub in schema.items() if getattr(sub, "required", False))

        def walk_object(value: Any, path: Path_) -> None:
            if type(value) is not dict:
                raise invalid(_format(path), value, "must be of type object")
            for key in needed:
                if value.get(key) is None:
                    raise InputError(f"{_format((path, key))}: Required value")
            for key, item in value.items():
                walk = fields.get(key)
                if walk is not None and item is not None:
                    walk(item, (path, key))

        return walk_object
    if isinstance(schema, list):
        walk_item = _compile(schema[0])

        def walk_array(value: Any, path: Path_) -> None:
            if type(value) is not list:
                raise invalid(_format(path), value, "must be of type array")
            for i, item in enumerate(value):
                if item is None:
                    raise invalid(_format((path, i)), item, "must not be null")
                walk_item(item, (path, i))

        return walk_array
    leaf: Leaf = schema

    def walk_leaf(value: Any, path: Path_) -> None:
        try:
            problem = leaf(value)
        except _Problem as p:
            where = _format(path) + p.suffix
            if p.unsupported:
                raise InputError(f"{where}: Unsupported value: {_shown(p.value)}: {p.detail}") from None
            raise invalid(where, p.value, p.detail) from None
        if problem is not None:
            raise invalid(_format(path), value, problem)

    return walk_leaf


_WALKERS = {kind: _compile(schema) for kind, schema in SCHEMAS.items()}


def check_object(obj: Mapping[str, Any]) -> None:
    """The fields netguard reads of one inventory object have the shape the API server requires."""
    kind = obj.get("kind")
    walk = _WALKERS.get(kind) if type(kind) is str else None
    if walk is None:
        return
    walk(obj, None)
    meta = obj.get("metadata")
    name = meta.get("name") if type(meta) is dict else None
    if not name:
        if kind in _REQUIRED_NAME:
            raise InputError("metadata.name: Required value: name or generateName is required")
    elif kind != "Namespace" and (problem := dns_subdomain_problem(name)):
        raise invalid("metadata.name", name, problem)
