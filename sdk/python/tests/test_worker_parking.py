"""Parking on the worker's side of worker.proto, against a scripted conductor: an execute
that returns `baton.Park` answers `Result.parked` with its timeout; an Assign of action
PARKED runs the task's parked handler with the callback (token, URL, deadline) and the
task's inputs; a task without a parked handler, or a revert, cannot park."""

from __future__ import annotations

import pytest

import baton
from baton.v1 import worker_pb2
from conftest import run, serving
from fake_conductor import FakeConductor, assign


def parking_worker(endpoints, seen: list) -> baton.Worker:
    worker = baton.Worker(endpoints, slots=2, worker_id="w-park")

    @worker.task("approvals.request")
    def request(ctx, ticket: str) -> baton.Park:
        return baton.Park(timeout="2h")

    @request.parked
    async def hand_out(ctx, ticket: str, callback: baton.Callback) -> None:
        seen.append((ctx.action, ticket, callback.token, callback.url, callback.deadline_ms, repr(callback)))

    @worker.task("bare")
    async def bare(ctx) -> baton.Park:
        return baton.Park(timeout=5)

    return worker


def test_an_execute_parks_and_the_parked_handler_gets_the_callback():
    seen: list = []

    async def body():
        conductor = await FakeConductor("c1").start()
        worker = parking_worker([conductor.endpoint], seen)
        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "approvals.request", '{"ticket": "T-1"}'))
            parked = await stream.next("result")
            assert parked.WhichOneof("outcome") == "parked", parked
            assert parked.parked.timeout_ms == 7_200_000
            callback = worker_pb2.Callback(token="bt1.j.a.1.secret", url="http://c/v1/callbacks/x", deadline_ms=99)
            stream.send(assign=assign("d-2", "approvals.request", '{"ticket": "T-1"}',
                                      action=worker_pb2.ACTION_PARKED, callback=callback))
            handed = await stream.next("result")
            assert (handed.dispatch_id, handed.WhichOneof("outcome")) == ("d-2", "success"), handed
        await conductor.stop()

    run(body)
    assert len(seen) == 1
    action, ticket, token, url, deadline, shown = seen[0]
    assert (action, ticket, token, url, deadline) == ("parked", "T-1", "bt1.j.a.1.secret", "http://c/v1/callbacks/x", 99)
    assert "secret" not in shown, "the repr hides the token"


def test_without_a_parked_handler_a_task_cannot_park():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = parking_worker([conductor.endpoint], [])
        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "bare"))
            failed = await stream.next("result")
            assert failed.WhichOneof("outcome") == "failure"
            assert failed.failure.kind == "NoParkedHandler", failed
            stream.send(assign=assign("d-2", "bare", action=worker_pb2.ACTION_PARKED))
            failed = await stream.next("result")
            assert failed.failure.kind == "NoParkedHandler", failed
        await conductor.stop()

    run(body)


def test_a_park_needs_a_timeout():
    with pytest.raises(ValueError, match="more than zero"):
        baton.Park(timeout=0)
