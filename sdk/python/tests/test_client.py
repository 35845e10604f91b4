"""baton.Client against a real conductor (embedded board, flow files): post, get, watch,
wait, cancel, idempotency keys, typed errors, failover past a dead endpoint."""

from __future__ import annotations

import pathlib

import grpc
import pytest

import baton
import harness

FLOWS = pathlib.Path(__file__).parent / "flows" / "client"


def test_post_wait_get_and_results(procs):
    conductor = procs.conductor("py-client-1", FLOWS)
    with harness.client(conductor) as client:
        posted = client.post("greet", {"who": "ada"})
        assert (posted.flow, posted.store, posted.state) == ("greet", {"who": "ada", "pause_ms": 0}, "UNCLAIMED")
        done = client.wait(posted.id, timeout=30)
        assert done.succeeded and done.outcome == "SUCCESS" and done.done
        assert done.results["hello"] == {"greeting": "hello", "who": "ada"}
        assert done.tasks["hello"].executions == 1
        again = client.get(posted.id)
        assert again.results == done.results and again.finished_at_ms is not None


def test_watch_ends_with_the_final_state(procs):
    conductor = procs.conductor("py-client-2", FLOWS)
    with harness.client(conductor) as client:
        job = client.post("greet", {"who": "bo", "pause_ms": 300})
        seen = list(client.watch(job.id, timeout=30))
        assert seen, "watch yielded nothing"
        assert seen[-1].state == "COMPLETE" and seen[-1].outcome == "SUCCESS"
        assert all(not j.done for j in seen[:-1])


def test_idempotency_key_returns_the_first_job_and_cancel_ends_one(procs):
    conductor = procs.conductor("py-client-3", FLOWS)
    with harness.client(conductor) as client:
        first = client.post("greet", {"who": "cy", "pause_ms": 2000}, idempotency_key="k-1")
        second = client.post("greet", {"who": "cy", "pause_ms": 2000}, idempotency_key="k-1")
        assert second.id == first.id and first.idempotency_key == "k-1"
        client.cancel(first.id)
        final = client.wait(first.id, timeout=30)
        assert (final.state, final.outcome) == ("COMPLETE", "CANCELLED")


def test_bad_requests_raise_grpc_errors_with_their_codes(procs):
    conductor = procs.conductor("py-client-4", FLOWS)
    with harness.client(conductor) as client:
        with pytest.raises(grpc.RpcError) as unknown:
            client.get("00000000-0000-4000-8000-000000000000")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as missing:
            client.post("greet", {})
        assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "who" in missing.value.details()


def test_a_dead_endpoint_is_passed_over(procs):
    conductor = procs.conductor("py-client-5", FLOWS)
    dead = f"127.0.0.1:{harness.free_port()}"
    with baton.Client([dead, conductor.endpoint], timeout=5) as client:
        job = client.post("greet", {"who": "di"})
        assert client.wait(job.id, timeout=30).succeeded
