"""The controller's one settings object: flags over environment (NETGUARD_*) over a YAML config file.

Config file (all keys optional):

    listen: 0.0.0.0:8080
    db: /var/lib/netguard/netguard.db      # or postgresql://user:pass@host/db
    token_file: /etc/netguard/tokens
    inventory: [cluster.yaml]              # files instead of a cluster
    kube: auto                             # auto | in-cluster | kubeconfig | off
    default_mode: learn                    # learn | monitor | protect
    namespaces: {shop: monitor, payments: protect}
    webhook_url: http://alertmanager:9093/api/v2/alerts
    read_auth: false                       # true: the read endpoints need a token too
    retention_hours: 168                   # raw flow batches kept this long (0: forever); edges always
    lease: netguard-system/netguard-controller  # several replicas on one PostgreSQL: elect a leader with this Lease
    identity: netguard-controller-7d9f-abcde    # this replica's name in the Lease (default: $POD_NAME, else the host name)
    lease_duration: 15                     # seconds without renewal before another replica takes over
    auto_apply: false                      # the leader applies approved policies of protect namespaces when they change
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from netguard.errors import InputError

MODES = ("learn", "monitor", "protect")
MODE_LABEL = "netguard.io/mode"


@dataclass
class Settings:
    listen: str = "127.0.0.1:8080"
    db: str = "netguard.db"
    token_file: str = ""
    tokens: tuple[str, ...] = ()  # read from token_file; never printed
    inventory: list[str] = field(default_factory=list)
    kube: str = "auto"  # auto: in-cluster or kubeconfig when there is no --inventory; off: no cluster
    kubeconfig: str = ""
    default_mode: str = "learn"
    namespaces: dict[str, str] = field(default_factory=dict)  # namespace -> mode (a Namespace label, then the API, win)
    webhook_url: str = ""
    read_auth: bool = False
    cors_origins: list[str] = field(default_factory=list)  # browser origins allowed to call the API
    no_auth: bool = False  # development only: accept writes without a token
    review_max_age: float = 2.0  # seconds a review (graph, policies) may lag the newest batch under steady ingest
    retention_hours: float = 168.0  # raw batches are kept this long (0: forever); the baseline edges always
    max_batch: int = 50_000  # records per POST
    max_body: int = 64 << 20  # bytes per POST
    log_level: str = "info"
    lease: str = ""  # NAMESPACE/NAME of the coordination.k8s.io Lease the replicas elect their leader with; "": no election
    identity: str = field(default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname())
    lease_duration: int = 15  # seconds: a dead leader is replaced within this (plus one retry, duration / 4)
    auto_apply: bool = False  # the leader applies approved policies of protect-mode namespaces whose text changed
    duty_interval: float = 1.0  # seconds between a replica's syncs with the database and the leader's duties

    def validate(self) -> Settings:
        for ns, mode in {"default_mode": self.default_mode, **self.namespaces}.items():
            if mode not in MODES:
                raise InputError(f"{ns}: mode {mode!r} is not one of {', '.join(MODES)}")
        if self.kube not in ("auto", "in-cluster", "kubeconfig", "off"):
            raise InputError(f"kube: {self.kube!r} is not one of auto, in-cluster, kubeconfig, off")
        if not self.tokens and not self.no_auth:
            raise InputError("no tokens: give --token-file FILE (one token a line), or --no-auth for local development")
        if self.lease and (self.lease.count("/") != 1 or not all(self.lease.split("/"))):
            raise InputError(f"lease: expected NAMESPACE/NAME, got {self.lease!r}")
        if self.lease_duration < 1:
            raise InputError(f"lease_duration: at least 1 second, got {self.lease_duration}")
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"listen: expected HOST:PORT, got {self.listen!r}")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def masked(self) -> dict[str, Any]:
        """What is printed at start-up: everything but secrets."""
        out = asdict(self)
        out["tokens"] = f"<{len(self.tokens)} tokens>"
        if "@" in self.db:
            scheme, _, rest = self.db.partition("://")
            out["db"] = f"{scheme}://***@{rest.rpartition('@')[2]}"
        return out


def read_tokens(path: str) -> tuple[str, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the token file: {exc.strerror}", source=path) from None
    tokens = tuple(t.strip() for t in text.splitlines() if t.strip() and not t.strip().startswith("#"))
    if not tokens:
        raise InputError("the token file holds no token", source=path)
    try:
        parse_tokens(tokens)
    except InputError as exc:
        raise InputError(str(exc), source=path) from None
    return tokens


class Role(StrEnum):
    READ = "read"  # the read API (graph, policies, alerts, audit, events)
    INGEST = "ingest"  # POST /api/v1/flows and /api/v1/edges only: what an agent's token needs, and nothing else
    WRITE = "write"  # everything: ingest, approve, apply, modes


@dataclass(frozen=True)
class Token:
    """One line of the token file: `SECRET [name=NAME] [role=read|ingest|write]`. A bare secret is a write
    token named `token-N` (N: its line among the tokens, from 1), as token files were before names."""

    secret: str
    name: str
    role: Role = Role.WRITE


def parse_token(line: str, index: int) -> Token:
    secret, *fields_ = line.split()
    values = {}
    for item in fields_:
        key, sep, value = item.partition("=")
        if not sep or key not in ("name", "role") or not value:
            raise InputError(f"token {index}: expected name=NAME or role=read|write, got {item!r}")
        values[key] = value
    role = values.get("role", "write")
    if role not in tuple(Role):
        raise InputError(f"token {index}: role must be read, ingest or write, got {role!r}")
    return Token(secret, values.get("name", f"token-{index}"), Role(role))


def parse_tokens(lines: tuple[str, ...]) -> tuple[Token, ...]:
    return tuple(parse_token(line, i) for i, line in enumerate(lines, 1))


_ENV = {f.name: f"NETGUARD_{f.name.upper()}" for f in fields(Settings) if f.name != "tokens"}


def load_settings(flags: dict[str, Any], config_file: str = "", environ: dict[str, str] | None = None) -> Settings:
    """Flags (None = not given) over NETGUARD_* variables over the config file over the defaults."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    if config_file:
        try:
            data = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read the config file: {exc}", source=config_file) from None
        if not isinstance(data, dict):
            raise InputError("expected a mapping", source=config_file)
        unknown = set(data) - set(_ENV)
        if unknown:
            raise InputError(f"unknown keys: {', '.join(sorted(unknown))}", source=config_file)
        values.update(data)
    for name, var in _ENV.items():
        if var in environ:
            raw: Any = environ[var]
            if name == "cors_origins":
                raw = [o for o in raw.split(",") if o]
            elif name == "inventory":
                raw = [p for p in raw.split(os.pathsep) if p]
            elif name == "namespaces":
                raw = dict(item.split("=", 1) for item in raw.split(",") if "=" in item)
            elif name in ("read_auth", "no_auth", "auto_apply"):
                raw = raw.lower() in ("1", "true", "yes")
            elif name in ("max_batch", "max_body", "lease_duration"):
                raw = int(raw)
            elif name in ("retention_hours", "review_max_age", "duty_interval"):
                raw = float(raw)
            values[name] = raw
    values.update({k: v for k, v in flags.items() if v is not None and v != []})
    settings = Settings(**values)
    if settings.token_file:
        settings.tokens = read_tokens(settings.token_file)
    return settings.validate()
