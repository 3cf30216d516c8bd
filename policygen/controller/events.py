"""Server-Sent Events: what changed, pushed to every open page (new edges, alerts, review state).

The controller publishes from any thread (ingest runs on the event loop, approvals and applies in the
thread pool); each subscriber is an asyncio queue on the loop that serves it. A subscriber that falls
more than `backlog` events behind loses the oldest and gets a `resync` event: it reloads everything.
An event carries a small hint (what changed, counts), never the data itself: the page fetches what
it shows, through the same API and authorization as always.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

KEEPALIVE_SECONDS = 15.0


class EventKind(StrEnum):
    GRAPH = "graph"  # new edges
    ALERT = "alert"  # new alerts
    REVIEW = "review"  # a decision, an apply, a removal, a mode change
    RESYNC = "resync"  # events were dropped: reload


@dataclass(frozen=True)
class Event:
    id: int
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


class EventHub:
    def __init__(self, backlog: int = 256) -> None:
        self.backlog = backlog
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]] = set()

    def publish(self, kind: EventKind, **data: Any) -> None:
        event = Event(next(self._ids), kind, data)
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(self._put, queue, event)
            except RuntimeError:  # its loop is closed: the subscriber is gone
                pass

    def _put(self, queue: asyncio.Queue[Event], event: Event) -> None:
        if queue.full():
            while not queue.empty():
                queue.get_nowait()
            event = Event(event.id, EventKind.RESYNC, {})
        queue.put_nowait(event)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def stream(self, keepalive: float = KEEPALIVE_SECONDS) -> AsyncIterator[bytes]:
        """The SSE byte stream of one subscriber: a `hello`, then events, a comment line when idle."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self.backlog)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.add(entry)
        try:
            yield b"retry: 2000\nevent: hello\ndata: {}\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), keepalive)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                yield event.encode()
        finally:
            with self._lock:
                self._subscribers.discard(entry)
