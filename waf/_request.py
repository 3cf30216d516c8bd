"""The request the engine inspects: what came over the wire, nothing parsed yet."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as the proxy (or a test) saw it.

    `uri` is the request target exactly as sent (still percent-encoded). `headers` keeps order and
    duplicates. `body` is what was read of the body: at most the inspection window; `body_truncated`
    says that more followed and was not inspected.
    """

    method: str = "GET"
    uri: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    http_version: str = "1.1"
    client: str = ""
    body_truncated: bool = False
    # Caches built on first use (not init fields: a `dataclasses.replace` copy starts with fresh ones).
    _lower: dict[str, list[str]] = field(default_factory=dict, init=False, compare=False, repr=False)
    _names: list[str] = field(default_factory=list, init=False, compare=False, repr=False)
    _memo: dict[Callable[[Request], object], object] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @classmethod
    def make(
        cls,
        method: str = "GET",
        uri: str = "/",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str | None = None,
        **kw: object,
    ) -> Request:
        """Build a Request from friendly types (a dict of headers, a str body)."""
        if headers is None:
            pairs: tuple[tuple[str, str], ...] = ()
        elif isinstance(headers, Mapping):
            pairs = tuple((str(k), str(v)) for k, v in headers.items())
        else:
            pairs = tuple((str(k), str(v)) for k, v in headers)
        if body is None:
            raw = b""
        elif isinstance(body, str):
            raw = body.encode("utf-8", "surrogateescape")
        else:
            raw = bytes(body)
        return cls(method=method, uri=uri, headers=pairs, body=raw, **kw)  # type: ignore[arg-type]

    def header_values(self, name: str) -> list[str]:
        """All values of one header, by case-insensitive name."""
        if not self._lower:
            self._index()
        return self._lower.get(name.lower(), [])

    def lower_names(self) -> list[str]:
        """The header names lowercased, in order: the protocol checks and the parser compare names
        case-insensitively, on every request."""
        if not self._lower:
            self._index()
        return self._names

    def _index(self) -> None:
        """Each name lowercased once, and the values by lowercased name (built on first use, in C
        unless a name repeats)."""
        names = self._names
        names.extend([k.lower() for k, _ in self.headers])
        index = self._lower
        index.update(zip(names, [[v] for _, v in self.headers], strict=True))
        if len(index) < len(names):  # a repeated name: all its values, in order
            index.clear()
            for low, (_, v) in zip(names, self.headers, strict=True):
                index.setdefault(low, []).append(v)
        if not index:
            index[""] = []  # built, no headers

    def header(self, name: str, default: str = "") -> str:
        values = self.header_values(name)
        return values[0] if values else default

    def derived(self, fn: Callable[[Request], T]) -> T:
        """`fn(self)`, computed once per request: several checks read the same derivation of a request
        (the body's lines) and each of them runs on every request."""
        try:
            return self._memo[fn]  # type: ignore[return-value]
        except KeyError:
            value = self._memo[fn] = fn(self)
            return value

