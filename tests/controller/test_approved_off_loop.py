"""The approved policies monitored batches are judged by are built in a worker thread, never on the event
loop: while the first one is built (the whole live review, up to a minute at 10,000 workloads), /healthz
answers, /readyz says what is being built, and a batch that arrives waits for it and is not lost."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Hashable

import httpx

from policygen.controller.app import create_app
from policygen.controller.approved import ApprovedSet, ApprovedSets
from tests.controller.conftest import AUTH, batch, bookinfo_records
from tests.controller.test_modes import LATERAL


class Gate:
    """A builder held back until the test releases it (the seam of ApprovedSets): a slow build without
    sleeping."""

    def __init__(self, build) -> None:  # type: ignore[no-untyped-def]
        self.real = build
        self.started = threading.Event()
        self.release = threading.Event()
        self.keys: list[Hashable] = []

    def __call__(self, key: Hashable) -> ApprovedSet:
        self.keys.append(key)
        self.started.set()
        assert self.release.wait(30), "the test never released the build"
        return self.real(key)


def _monitoring_with_an_approval(make_controller):
    learner = make_controller()
    learner.ingest(json.dumps(batch(bookinfo_records())).encode())
    learner.approve("default/Deployment/ratings-v1", "approved")
    learner.close()
    ctl = make_controller(db=learner.settings.db, namespaces={"default": "monitor"}, duty_interval=3600.0)
    gate = Gate(ctl._approved.build)
    ctl._approved.build = gate
    return ctl, gate


def test_the_loop_answers_while_the_first_approved_set_is_built_and_the_batch_waits_for_it(make_controller):
    ctl, gate = _monitoring_with_an_approval(make_controller)

    async def scenario() -> tuple[list[int], httpx.Response, bool]:
        transport = httpx.ASGITransport(app=create_app(ctl))
        async with httpx.AsyncClient(transport=transport, base_url="http://controller") as client:
            codes = [(await client.get("/readyz")).status_code]  # not ready: asking starts the build
            posted = asyncio.create_task(client.post("/api/v1/flows", content=json.dumps(batch([LATERAL])),
                                                     headers=AUTH))
            assert await asyncio.to_thread(gate.started.wait, 30)
            codes.append((await client.get("/healthz")).status_code)  # the loop answers during the build
            codes.append((await client.get("/readyz")).status_code)
            waiting = not posted.done()
            gate.release.set()
            response = await posted
            codes.append((await client.get("/readyz")).status_code)
            return codes, response, waiting

    codes, response, waiting = asyncio.run(scenario())
    assert codes == [503, 200, 503, 200]
    assert waiting  # the batch waited for the approved set, on the loop without blocking it
    assert response.status_code == 200 and response.json()["accepted"] == 1
    alerts = ctl.store.alerts()  # judged by the approved policy once it was built: not lost, and denied
    assert [(a["source"], a["reasons"]) for a in alerts] == [("default/details-v1", ["new-edge", "denied"])]
    assert len(gate.keys) == 1  # one build, asked by /readyz, the batch and again by /readyz


def test_a_batch_is_judged_by_the_current_set_while_a_newer_inventorys_is_built(make_controller):
    ctl, gate = _monitoring_with_an_approval(make_controller)
    gate.release.set()
    ctl.ingest(json.dumps(batch([LATERAL])).encode())  # builds the first set (waiting here: a sync caller)
    gate.release.clear()
    gate.started.clear()
    generation, inventory = ctl.source.snapshot()
    ctl.source.snapshot = lambda: (generation + 1, inventory)  # a new inventory: a new key
    staged = ctl.stage(ctl.parse(body := json.dumps(batch([LATERAL])).encode()), body)
    assert ctl.awaiting(staged) is None  # not held up: the approvals did not change
    assert gate.started.wait(30)  # but the newer set is being built
    prepared = ctl.classify(staged)
    assert prepared.write.alerts[0].reasons == ["new-edge", "denied"]
    gate.release.set()


def test_an_approval_makes_the_next_batch_wait_for_the_set_that_includes_it(make_controller):
    ctl, gate = _monitoring_with_an_approval(make_controller)
    gate.release.set()
    ctl.ingest(json.dumps(batch([LATERAL])).encode())
    ctl.approve("default/Deployment/details-v1", "approved")
    staged = ctl.stage(ctl.parse(body := json.dumps(batch([LATERAL])).encode()), body)
    waiting = ctl.awaiting(staged)
    assert waiting is not None
    made = waiting.result(30)
    assert ("default/Deployment/details-v1", ctl.approvals["default/Deployment/details-v1"].digest) in made.key[1]
    assert ctl.awaiting(staged) is None


def test_builds_are_coalesced_to_the_latest_key_and_the_current_set_stays_readable():
    built: list[Hashable] = []
    hold = threading.Event()
    started = threading.Event()

    def build(key: Hashable) -> ApprovedSet:
        built.append(key)
        started.set()
        hold.wait(30)
        return ApprovedSet(key, None, None)  # type: ignore[arg-type]

    sets = ApprovedSets(build)
    try:
        first = sets.want("a")
        assert first is not None and sets.want("a") is first
        assert started.wait(30)
        assert sets.want("a") is first  # the running build is the one asked for
        later = sets.want("b")
        assert later is not None and later is not first and sets.want("c") is later  # c replaces b
        assert sets.current is None and sets.building
        hold.set()
        assert later.result(30).key == "c" and first.result(30).key == "a"
        assert built == ["a", "c"] and sets.want("c") is None and not sets.building
    finally:
        hold.set()
        sets.close()


def test_a_namespace_monitored_at_runtime_does_not_make_a_ready_replica_unready(make_controller):
    learner = make_controller()
    learner.ingest(json.dumps(batch(bookinfo_records())).encode())
    assert learner.review_ready()  # learn only: ready at once, nothing built
    gate = Gate(learner._approved.build)
    learner._approved.build = gate
    learner.set_mode("default", "monitor")
    staged = learner.stage(learner.parse(body := json.dumps(batch([LATERAL])).encode()), body)
    waiting = learner.awaiting(staged)
    assert waiting is not None and gate.started.wait(30)  # the batch waits for the set...
    assert learner.review_ready()  # ...but the replica stays ready meanwhile
    gate.release.set()
    waiting.result(30)
    assert learner.classify(staged).write.alerts[0].reasons == ["new-edge"]
