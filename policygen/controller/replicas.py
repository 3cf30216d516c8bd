"""Which batches a replica's live review includes, so that it picks up exactly the others' new ones.

Replicas sharing PostgreSQL each follow their own commits in place; the batches other replicas commit
are found by id in the `batches` table once a duty interval and merged in the same way (their edges
mark their workloads dirty), instead of rebuilding the review from the database.

Batch ids are given out by the database before the commit, so a batch may become visible after one with
a higher id: the cursor keeps the ids it has seen within a window of WINDOW ids below the highest, and
looks there again each time. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

WINDOW = 1000  # far more batches than are ever committing at once (20 s of 50,000 flows/s in batches of 1,000)


@dataclass
class BatchCursor:
    """Every batch id up to `low` is included, and those in `seen` above it."""

    low: int = 0
    seen: set[int] = field(default_factory=set)

    @classmethod
    def at(cls, ids: Iterable[int]) -> BatchCursor:
        """The cursor of a snapshot that includes `ids` (the last WINDOW ids of its database, at least)."""
        cursor = cls()
        cursor.mark(ids)  # ids of the window the snapshot did not include are looked for again
        return cursor

    def unseen(self, ids: Iterable[int]) -> list[int]:
        return sorted(i for i in ids if i > self.low and i not in self.seen)

    def mark(self, ids: Iterable[int]) -> None:
        self.seen.update(ids)
        if self.seen:
            low = max(self.seen) - WINDOW
            if low > self.low:
                self.low = low
                self.seen = {i for i in self.seen if i > low}

    def behind(self, top: int) -> bool:
        """Whether batches up to id `top` (the database's highest) may be missing: a higher id, or a gap
        below the highest seen (a batch still committing, or one rolled back: looked for again)."""
        highest = max(self.seen, default=self.low)
        return top > highest or len(self.seen) < highest - self.low
