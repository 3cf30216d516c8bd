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
    # Each lowercased name's first value, and all the values of a name sent more than once. Strings and
    # tuples, no list per header: a request's caches never hold a container the garbage collector must
    # keep tracking (a list per header stayed on its books as long as the request lived).
    _lower: dict[str, str] = field(default_factory=dict, init=False, compare=False, repr=False)
    _more: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, compare=False, repr=False)
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

    def header_values(self, name: str) -> tuple[str, ...]:
        """All values of one header, by case-insensitive name."""
        if not self._lower and self.headers:
            self._index()
        low = name.lower()
        value = self._lower.get(low)
        if value is None:
            return ()
        if self._more and low in self._more:
            return self._more[low]
        return (value,)

    def lower_names(self) -> list[str]:
        """The header names lowercased, in order: the protocol checks and the parser compare names
        case-insensitively, on every request."""
        if not self._lower and self.headers:
            self._index()
        return self._names

    def _index(self) -> None:
        """Each name lowercased once, and the first value by lowercased name (built on first use; the
        values of a name sent more than once are kept in order in `_more`). One compiled loop: dict and
        list operations in C, where `zip` and `dict.update` were generic calls."""
        names = self._names
        first = self._lower
        repeated: dict[str, list[str]] = {}
        for k, v in self.headers:
            low = k.lower()
            names.append(low)
            if low not in first:
                first[low] = v
            elif low in repeated:
                repeated[low].append(v)
            else:
                repeated[low] = [first[low], v]
        for low, vs in repeated.items():
            self._more[low] = tuple(vs)

    def header(self, name: str, default: str = "") -> str:
        """The first value of one header, by case-insensitive name."""
        if not self._lower and self.headers:
            self._index()
        return self._lower.get(name.lower(), default)

    def derived(self, fn: Callable[[Request], T]) -> T:
        """`fn(self)`, computed once per request: several checks read the same derivation of a request
        (the body's lines) and each of them runs on every request."""
        try:
            return self._memo[fn]  # type: ignore[return-value]
        except KeyError:
            value = self._memo[fn] = fn(self)
            return value

