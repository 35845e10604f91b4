"""Python workers driven by real conductors (the `conductor` binary, flow files with
`kind: remote`): a worker written from worker.proto alone; a flow across two Python
workers and a Rust one (the `test_worker` binary), results flowing between them; cancel
reaching task code; kill -9 and SIGSTOP of a worker (retried elsewhere, the late result
changing nothing); SIGTERM mid-task; N slots; default and heartbeat timeouts; no worker
for a task; a refused Hello; and the example checkout flow."""

from __future__ import annotations

import asyncio
import pathlib
import signal
import subprocess
import sys

import pytest

import baton
import harness

TESTS = pathlib.Path(__file__).parent
FLOWS = TESTS / "flows" / "e2e"
E2E_WORKER = TESTS / "workers" / "e2e.py"
REPO = harness.REPO
JOB_WAIT_S = 60


def connected(client, *names: str) -> bool:
    present = {w.worker_id for w in client.workers()}
    return all(name in present for name in names)


def test_a_worker_written_from_the_proto_alone_runs_a_task(procs, tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    # Stubs straight from the .proto (flat modules: nothing of the SDK's `baton` package).
    generated = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto' / 'baton' / 'v1'}",
         f"--python_out={stubs}", f"--grpc_python_out={stubs}", "worker.proto"],
        capture_output=True, text=True,
    )
    assert generated.returncode == 0, generated.stderr
    conductor = procs.conductor("py-proto-only", FLOWS)
    worker = procs.worker("proto-only", TESTS / "workers" / "proto_only.py", str(stubs), conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the proto-only worker", lambda: any(w.sdk == "proto-only/test" for w in client.workers()))
        job = client.post("shout", {"text": "hello"})
        done = client.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert done.results["shout"] == {"shout": "HELLO!", "key": f"{job.id}/shout/1"}
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(timeout=30) == 0, worker.log_tail()
    assert "stream ended" in worker.log_tail()


def test_results_flow_between_two_python_workers(procs):
    conductor = procs.conductor("py-race", FLOWS)
    procs.worker("py-a", E2E_WORKER, "py-a", conductor.endpoint)
    procs.worker("py-b", E2E_WORKER, "py-b", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("both workers", lambda: connected(client, "py-a", "py-b"))
        done = client.wait(client.post("relay-race", {"start": ["go"]}).id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        trail = done.results["leg3"]
        assert [step.split("@")[0] for step in trail] == ["go", "one", "two", "three"]
        assert {step.split("@")[1] for step in trail[1:]} <= {"py-a", "py-b"}


def test_cancel_reaches_the_task_code(procs):
    conductor = procs.conductor("py-cancel", FLOWS)
    worker = procs.worker("py-c", E2E_WORKER, "py-c", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: connected(client, "py-c"))
        job = client.post("hang", {})
        harness.wait_for("the task to start", lambda: f"hanging {job.id}" in worker.log_tail())
        client.cancel(job.id)
        final = client.wait(job.id, timeout=JOB_WAIT_S)
        assert final.outcome == "CANCELLED", final
        harness.wait_for("the cancellation in the task", lambda: f"cancelled {job.id}" in worker.log_tail())


def test_a_killed_worker_s_attempt_is_retried_on_another(procs):
    conductor = procs.conductor("py-kill", FLOWS)
    first = procs.worker("py-first", E2E_WORKER, "py-first", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the first worker", lambda: connected(client, "py-first"))
        job = client.post("sleepy", {"seconds": 2})
        harness.wait_for("the first attempt", lambda: f"sleeping {job.id}/nap/1 on py-first" in first.log_tail())
        procs.worker("py-second", E2E_WORKER, "py-second", conductor.endpoint)
        harness.wait_for("the second worker", lambda: connected(client, "py-second"))
        first.kill()  # SIGKILL mid-task
        done = client.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert done.results["nap"]["ran_on"] == "py-second"
        assert done.results["nap"]["attempt"] == 2
        assert done.tasks["nap"].executions == 2


def test_sigterm_mid_task_finishes_it_then_exits(procs):
    conductor = procs.conductor("py-term", FLOWS)
    worker = procs.worker("py-t", E2E_WORKER, "py-t", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: connected(client, "py-t"))
        job = client.post("sleepy", {"seconds": 1.5})
        harness.wait_for("the task to start", lambda: f"sleeping {job.id}/nap/1" in worker.log_tail())
        worker.signal(signal.SIGTERM)
        done = client.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded and done.tasks["nap"].executions == 1, done
        assert worker.popen.wait(timeout=30) == 0, worker.log_tail()
        harness.wait_for("the worker to leave", lambda: not connected(client, "py-t"))


def test_no_worker_offers_the_task(procs):
    conductor = procs.conductor("py-nobody", FLOWS)
    with harness.client(conductor) as client:
        done = client.wait(client.post("nobody", {}).id, timeout=JOB_WAIT_S)
        assert done.outcome != "SUCCESS", done
        failure = done.tasks["orphan"].failure
        assert failure is not None and "nobody.offers.this" in failure.message, done


def test_the_example_checkout_flow(procs):
    example = REPO / "examples" / "python-worker"
    conductor = procs.conductor("py-example", example / "flows")
    worker = procs.worker("example", example / "worker.py", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the example worker", lambda: any(w.labels.get("example") == "checkout" for w in client.workers()))
        ok = client.wait(client.post("checkout", {"customer": "ada", "sku": "book", "quantity": 2, "amount": 30}).id,
                         timeout=JOB_WAIT_S)
        assert ok.succeeded, ok
        assert ok.results["receipt"] == f"receipt for {ok.results['charge']['charge_id']} sent to ada"
        bad = client.wait(client.post("checkout", {"customer": "bo", "sku": "pen", "quantity": 1, "amount": 0}).id,
                          timeout=JOB_WAIT_S)
        assert bad.outcome == "REVERTED", bad
        assert bad.tasks["charge"].failure.kind == "BadAmount"
        harness.wait_for("the reservation's release", lambda: f"({bad.id})" in worker.log_tail())


def test_a_flow_on_two_python_workers_and_a_rust_worker(procs):
    conductor = procs.conductor("py-mixed", FLOWS)
    procs.worker("py-a", E2E_WORKER, "py-a", conductor.endpoint)
    procs.worker("py-b", E2E_WORKER, "py-b", conductor.endpoint)
    # The Rust worker: tests/src/bin/test_worker.rs on the `worker` crate ("add", "echo").
    procs.process(
        "rust-w",
        [str(harness.binary("test_worker")), "--endpoints", f"http://{conductor.endpoint}", "--id", "rust-w", "--slots", "2"],
    )
    with harness.client(conductor) as client:
        harness.wait_for("all three workers", lambda: connected(client, "py-a", "py-b", "rust-w"))
        done = client.wait(client.post("mixed", {}).id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert done.results["py-first"] == ["go", "one@py-a"]
        assert done.results["rust"] == 42
        assert done.results["rust-echo"]["worker"] == "rust-w"
        assert done.results["rust-echo"]["args"]["sum"] == 42
        assert done.results["py-last"] == ["go", "one@py-a", "rust-w@py-b"]


def test_a_stopped_worker_is_lost_and_its_late_result_changes_nothing(procs):
    conductor = procs.conductor("py-stop", FLOWS, extra=["--worker-heartbeat-timeout", "1s"])
    stopped = procs.worker("py-stopped", E2E_WORKER, "py-stopped", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the first worker", lambda: connected(client, "py-stopped"))
        # Attempt 1 is still running when the worker is let go on again; the retry is quick.
        job = client.post("late", {})
        harness.wait_for("the first attempt", lambda: f"sleeping {job.id}/nap/1 on py-stopped" in stopped.log_tail())
        procs.worker("py-live", E2E_WORKER, "py-live", conductor.endpoint)
        harness.wait_for("the second worker", lambda: connected(client, "py-live"))
        stopped.signal(signal.SIGSTOP)  # the TCP connection stays open; nothing answers
        done = client.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert (done.results["nap"]["ran_on"], done.results["nap"]["attempt"]) == ("py-live", 2)
        stopped.signal(signal.SIGCONT)  # its attempt 1 finishes now, long after reassignment
        harness.wait_for("the stopped worker to come back", lambda: connected(client, "py-stopped"))
        # It reconnects listing attempt 1 as running; nobody waits for it: the conductor
        # cancels it, and its late Result is sent and dropped.
        harness.wait_for("the late attempt to end", lambda: f"cancelled {job.id}/nap/1" in stopped.log_tail())
        after = client.get(job.id)
        assert after.results == done.results and after.tasks["nap"].executions == 2, after
        assert f"sleep cancelled {job.id}/nap/1 (orphan" in stopped.log_tail()


def test_a_worker_of_n_slots_given_3n_tasks_runs_exactly_n_at_once(procs):
    conductor = procs.conductor("py-slots", FLOWS, extra=["--concurrency", "32"])
    procs.worker("py-3", E2E_WORKER, "py-3", conductor.endpoint, env={"SLOTS": "3"})
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: connected(client, "py-3"))
        done = client.wait(client.post("peak", {"count": 9, "ms": 400}).id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        peaks = [result["peak"] for result in done.results.values()]
        assert len(peaks) == 9 and max(peaks) == 3, peaks


def test_the_worker_s_default_timeout_applies_unless_the_flow_sets_one(procs):
    conductor = procs.conductor("py-timeout", FLOWS)
    worker = procs.worker("py-to", E2E_WORKER, "py-to", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: connected(client, "py-to"))
        job = client.wait(client.post("bounded", {"seconds": 2}).id, timeout=JOB_WAIT_S)
        assert job.outcome != "SUCCESS", job
        assert job.tasks["default"].failure.kind == "Timeout", job
        assert job.results["overridden"] == "in time", job
        harness.wait_for("the cancel in the task", lambda: f"bounded cancelled {job.id}" in worker.log_tail())


def test_ctx_heartbeat_keeps_a_task_alive_under_a_heartbeat_timeout(procs):
    conductor = procs.conductor("py-beat", FLOWS)
    procs.worker("py-hb", E2E_WORKER, "py-hb", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: connected(client, "py-hb"))
        job = client.wait(client.post("beats", {}).id, timeout=JOB_WAIT_S)
        assert job.results.get("beating", 0) > 0, job
        assert job.tasks["silent"].failure.kind == "HeartbeatTimeout", job


def test_a_hello_the_conductor_refuses_stops_the_worker_with_its_reason(procs):
    conductor = procs.conductor("py-refuse", FLOWS)
    worker = baton.Worker([conductor.endpoint], worker_id="w" * 300)

    @worker.task("py.anything")
    async def anything(ctx) -> None: ...

    with pytest.raises(baton.WorkerRejected, match="worker_id must be 1 to 256 characters"):
        asyncio.run(asyncio.wait_for(worker.serve(), 30))
