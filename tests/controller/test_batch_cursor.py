"""The cursor of the batches a replica's live review includes (policygen/controller/replicas.py): whatever
order the ids become visible in (ids are given out before the commit), each is picked up exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policygen.controller.replicas import WINDOW, BatchCursor


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2 * WINDOW + 50), st.data())
def test_every_batch_is_picked_up_once_whatever_order_the_commits_become_visible_in(n, data):
    order = list(range(1, n + 1))
    # commits land out of order, but never more than a few hundred ids behind the highest
    swaps = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 200)), max_size=50))
    for i, shift in swaps:
        j = min(n - 1, i + shift)
        order[i], order[j] = order[j], order[i]
    snapshot_at = data.draw(st.integers(0, n))
    cursor = BatchCursor.at(order[:snapshot_at])  # the review was built from a snapshot with these
    picked = list(order[:snapshot_at])
    visible: set[int] = set(order[:snapshot_at])
    step = data.draw(st.integers(50, 400))
    for start in range(snapshot_at, n, step):
        visible.update(order[start:start + step])
        new = cursor.unseen(i for i in visible if i > cursor.low)  # what `batch_ids_after(low)` answers
        picked += new
        cursor.mark(new)
    assert not cursor.unseen(visible) and not cursor.behind(max(visible, default=0))
    assert sorted(picked) == list(range(1, n + 1))
