"""The worker's half of worker.proto, message by message, against a scripted conductor
(fake_conductor.py): Hello, Welcome, Assign -> one Result, Progress, Cancel, Heartbeats,
a silent conductor, reconnects with Hello.running, and the graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import threading

import grpc
import pytest

import baton
from baton.v1 import worker_pb2
from conftest import run, serving
from fake_conductor import FakeConductor, assign


def billing_worker(endpoints, **kwargs) -> baton.Worker:
    worker = baton.Worker(endpoints, slots=4, worker_id="w-test", labels={"zone": "a"}, **kwargs)

    @worker.task("billing.charge", timeout="5m")
    async def charge(ctx, customer: str, amount: int) -> dict:
        return {"customer": customer, "charged": amount, "key": ctx.idempotency_key, "job": ctx.job_id,
                "attempt": ctx.attempt, "task": ctx.task, "atom": ctx.atom, "action": ctx.action}

    @charge.revert
    async def refund(ctx, customer: str, amount: int, result, failure) -> dict:
        return {"refunded": result, "failure": None if failure is None else [failure.kind, failure.message],
                "causes": [] if failure is None else [c.kind for c in failure.causes], "action": ctx.action}

    @worker.task("sync.add")
    def add(ctx, a: int, b: int) -> int:
        return a + b

    @worker.task("fails")
    async def fails(ctx) -> None:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise baton.TaskError("card declined", kind="CardDeclined", details={"code": 51}) from inner

    @worker.task("big")
    async def big(ctx, size: int) -> str:
        return "x" * size

    return worker


def test_hello_says_who_the_worker_is_and_what_it_runs():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = billing_worker([conductor.endpoint])
        async with serving(worker):
            stream = await conductor.stream()
            hello = stream.hello
            assert hello.worker_id == "w-test"
            assert hello.slots == 4
            assert dict(hello.labels) == {"zone": "a"}
            assert hello.sdk == f"baton-python/{baton.__version__}"
            offers = {t.name: (t.can_revert, t.default_timeout_ms) for t in hello.tasks}
            assert offers == {
                "billing.charge": (True, 300_000),
                "sync.add": (False, 0),
                "fails": (False, 0),
                "big": (False, 0),
            }
            assert list(hello.running) == []
        await conductor.stop()

    run(body)


def test_each_assign_gets_one_result_with_its_dispatch_id_and_attempt():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = billing_worker([conductor.endpoint])
        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "billing.charge", '{"customer": "c-7", "amount": 42}', attempt=3,
                                      job_id="j-9", atom="charge"))
            stream.send(assign=assign("d-2", "sync.add", '{"a": 2, "b": 5}'))
            results = {}
            for _ in range(2):
                result = await stream.next("result")
                results[result.dispatch_id] = result
            one = results["d-1"]
            assert one.attempt == 3
            assert json.loads(one.success.result_json) == {
                "customer": "c-7", "charged": 42, "key": "j-9/charge/3", "job": "j-9", "attempt": 3,
                "task": "billing.charge", "atom": "charge", "action": "execute",
            }
            assert json.loads(results["d-2"].success.result_json) == 7
        await conductor.stop()

    run(body)


def test_failures_carry_kind_message_details_and_causes():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = billing_worker([conductor.endpoint])
        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "fails"))
            result = await stream.next("result")
            assert result.WhichOneof("outcome") == "failure"
            assert (result.failure.kind, result.failure.message) == ("CardDeclined", "card declined")
            assert json.loads(result.failure.details_json) == {"code": 51}
            assert [(c.kind, c.message) for c in result.failure.causes] == [("KeyError", "'inner'")]

            stream.send(assign=assign("d-2", "nobody.runs.this"))
            unknown = await stream.next("result")
            assert unknown.failure.kind == "UnknownTask"
            assert "nobody.runs.this" in unknown.failure.message

            stream.send(assign=assign("d-3", "sync.add", '{"a": 1}'))
            missing = await stream.next("result")
            assert missing.failure.kind == "TypeError"
            assert "b" in missing.failure.message
        await conductor.stop()

    run(body)


def test_revert_receives_the_inputs_the_result_and_the_failure():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = billing_worker([conductor.endpoint])
        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "billing.charge", '{"customer": "c", "amount": 1}',
                                      action=worker_pb2.ACTION_REVERT, result_json='{"charge_id": "ch-1"}'))
            reverted = await stream.next("result")
            assert json.loads(reverted.success.result_json) == {
                "refunded": {"charge_id": "ch-1"}, "failure": None, "causes": [], "action": "revert"}

            failed = worker_pb2.TaskFailure(kind="Timeout", message="too slow",
                                            causes=[worker_pb2.TaskFailure(kind="IOError", message="net")])
            stream.send(assign=assign("d-2", "billing.charge", '{"customer": "c", "amount": 1}',
                                      action=worker_pb2.ACTION_REVERT, failure=failed))
            after_failure = await stream.next("result")
            assert json.loads(after_failure.success.result_json) == {
                "refunded": None, "failure": ["Timeout", "too slow"], "causes": ["IOError"], "action": "revert"}

            stream.send(assign=assign("d-3", "sync.add", '{"a": 1, "b": 2}', action=worker_pb2.ACTION_REVERT))
            no_revert = await stream.next("result")
            assert no_revert.failure.kind == "UnknownTask"
        await conductor.stop()

    run(body)


def test_a_result_over_the_welcome_limit_fails_as_result_too_large():
    async def body():
        conductor = await FakeConductor("c1", max_result_bytes=1000).start()
        worker = billing_worker([conductor.endpoint])
        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "big", '{"size": 5000}'))
            result = await stream.next("result")
            assert result.failure.kind == "ResultTooLarge"
            stream.send(assign=assign("d-2", "big", '{"size": 10}'))
            assert json.loads((await stream.next("result")).success.result_json) == "x" * 10
        await conductor.stop()

    run(body)


def test_ctx_heartbeat_sends_progress_from_async_and_sync_code():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = baton.Worker([conductor.endpoint], slots=2)
        release = asyncio.Event()

        @worker.task("long")
        async def long(ctx) -> str:
            ctx.heartbeat({"done": 1})
            ctx.heartbeat()
            await release.wait()
            return "ok"

        @worker.task("long.sync")
        def long_sync(ctx) -> str:
            ctx.heartbeat({"thread": threading.current_thread().name.startswith("baton-task")})
            return "ok"

        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "long"))
            first = await stream.next("progress")
            second = await stream.next("progress")
            assert (first.dispatch_id, json.loads(first.details_json)) == ("d-1", {"done": 1})
            assert (second.dispatch_id, second.details_json) == ("d-1", "")
            release.set()
            assert (await stream.next("result")).success.result_json == '"ok"'

            stream.send(assign=assign("d-2", "long.sync"))
            from_thread = await stream.next("progress")
            assert (from_thread.dispatch_id, json.loads(from_thread.details_json)) == ("d-2", {"thread": True})
            assert (await stream.next("result")).dispatch_id == "d-2"
        await conductor.stop()

    run(body)


def test_cancel_raises_cancelled_error_in_async_code_and_sets_ctx_cancelled_for_sync_code():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = baton.Worker([conductor.endpoint], slots=2)
        seen = {}
        started = asyncio.Event()
        sync_started = threading.Event()

        @worker.task("waits")
        async def waits(ctx) -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen["async"] = ctx.cancelled
                raise

        @worker.task("waits.sync")
        def waits_sync(ctx) -> str:
            sync_started.set()
            for _ in range(3000):  # bounded: 30 s at most
                if ctx.cancelled:
                    seen["sync"] = ctx.cancel_reason
                    return "stopped"
                threading.Event().wait(0.01)
            return "never cancelled"

        async with serving(worker):
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "waits"))
            await asyncio.wait_for(started.wait(), 15)
            stream.send(cancel=worker_pb2.Cancel(dispatch_id="d-1", reason="job cancelled"))
            result = await stream.next("result")
            assert (result.dispatch_id, result.failure.kind, result.failure.message) == ("d-1", "Cancelled", "job cancelled")
            assert seen["async"] is True

            stream.send(assign=assign("d-2", "waits.sync"))
            assert await asyncio.to_thread(sync_started.wait, 15)
            stream.send(cancel=worker_pb2.Cancel(dispatch_id="d-2", reason="timeout"))
            result = await stream.next("result")
            assert (result.dispatch_id, result.failure.kind) == ("d-2", "Cancelled")
            assert seen["sync"] == "timeout"
        await conductor.stop()

    run(body)


def test_heartbeats_flow_while_idle_and_report_free_slots():
    async def body():
        conductor = await FakeConductor("c1", heartbeat_interval_ms=50).start()
        worker = billing_worker([conductor.endpoint])
        async with serving(worker):
            stream = await conductor.stream()
            beats = []
            while len(beats) < 3:
                message = await asyncio.wait_for(stream.received.get(), 15)
                assert message.WhichOneof("msg") == "heartbeat", message
                beats.append(message.heartbeat.free_slots)
            assert beats == [4, 4, 4]
        await conductor.stop()

    run(body)


def test_silent_conductor_is_left_for_the_next_endpoint_with_hello_running():
    async def body():
        silent = await FakeConductor("silent", heartbeat_interval_ms=100, heartbeat_timeout_ms=600).start()
        other = await FakeConductor("other").start()
        worker = baton.Worker([silent.endpoint, other.endpoint], slots=2, worker_id="w-move")
        release = asyncio.Event()

        @worker.task("slow")
        async def slow(ctx) -> str:
            await release.wait()
            return f"done on {ctx.conductor}"

        async with serving(worker):
            first = await silent.stream()
            first.send(assign=assign("d-1", "slow", job_id="j", atom="a", attempt=2))
            first.silent = True  # the TCP connection stays up; nothing more comes
            second = await other.stream()
            assert second.hello.worker_id == "w-move"
            assert [(r.dispatch_id, r.job_id, r.atom, r.attempt) for r in second.hello.running] == [("d-1", "j", "a", 2)]
            release.set()
            result = await second.next("result")
            assert (result.dispatch_id, result.attempt) == ("d-1", 2)
            assert result.success.result_json == '"done on silent"'
        await silent.stop()
        await other.stop()

    run(body)


def test_a_closed_stream_reconnects_and_an_orphan_cancel_stops_the_task():
    async def body():
        first = await FakeConductor("a").start()
        second = await FakeConductor("b").start()
        worker = baton.Worker([first.endpoint, second.endpoint], slots=1)
        started = asyncio.Event()

        @worker.task("forever")
        async def forever(ctx) -> None:
            started.set()
            await asyncio.sleep(3600)

        async with serving(worker):
            stream = await first.stream()
            stream.send(assign=assign("d-1", "forever"))
            await asyncio.wait_for(started.wait(), 15)
            await first.stop()  # the conductor goes away
            again = await second.stream()
            assert [r.dispatch_id for r in again.hello.running] == ["d-1"]
            again.send(cancel=worker_pb2.Cancel(dispatch_id="d-1", reason="orphan: nobody waits for it"))
            result = await again.next("result")
            assert (result.dispatch_id, result.failure.kind) == ("d-1", "Cancelled")
        await second.stop()

    run(body)


def test_endpoints_that_do_not_answer_are_skipped():
    async def body():
        dead = await FakeConductor("dead").start()
        await dead.stop()  # a port nobody listens on any more
        live = await FakeConductor("live").start()
        worker = billing_worker([dead.endpoint, live.endpoint])
        async with serving(worker):
            stream = await live.stream()
            stream.send(assign=assign("d-1", "sync.add", '{"a": 1, "b": 1}'))
            assert (await stream.next("result")).success.result_json == "2"
        await live.stop()

    run(body)


def test_graceful_shutdown_drains_finishes_then_half_closes():
    async def body():
        conductor = await FakeConductor("c1").start()
        worker = baton.Worker([conductor.endpoint], slots=2)
        release = asyncio.Event()
        started = asyncio.Event()

        @worker.task("slow")
        async def slow(ctx) -> str:
            started.set()
            await release.wait()
            return "finished"

        serve = asyncio.create_task(worker.serve())
        stream = await conductor.stream()
        stream.send(assign=assign("d-1", "slow"))
        await asyncio.wait_for(started.wait(), 15)
        worker.shutdown()
        slots = await stream.next("slots")
        assert slots.slots == 0
        assert not serve.done()
        release.set()
        result = await stream.next("result")
        assert result.success.result_json == '"finished"'
        await stream.half_close()
        await asyncio.wait_for(serve, 15)
        await conductor.stop()

    run(body)


def test_a_rejected_hello_stops_the_worker_with_the_reason():
    async def body():
        conductor = await FakeConductor("strict", reject=grpc.StatusCode.INVALID_ARGUMENT).start()
        worker = billing_worker([conductor.endpoint])
        with pytest.raises(baton.WorkerRejected, match="strict refuses this Hello"):
            await asyncio.wait_for(worker.serve(), 15)
        await conductor.stop()

    run(body)


def test_registration_mistakes_are_refused_early():
    worker = baton.Worker("127.0.0.1:1")

    @worker.task("one")
    async def one(ctx) -> None: ...

    with pytest.raises(ValueError, match="registered twice"):
        worker.task("one")(one)
    with pytest.raises(ValueError, match="already has a revert"):
        one.revert(one.fn)
        one.revert(one.fn)
    with pytest.raises(ValueError, match="slots"):
        baton.Worker("127.0.0.1:1", slots=0)
    with pytest.raises(ValueError, match="no tasks"):
        asyncio.run(baton.Worker("127.0.0.1:1").serve())
