"""A Python worker in a fleet of two conductors on a real etcd: kill -9 the conductor it
is connected to while the job's task runs there; the worker reconnects to the other
conductor (its orphaned attempt cancelled), which takes the job over and the task's
retry runs on the same worker; the job succeeds with two executions."""

from __future__ import annotations


import harness
from test_e2e_workers import E2E_WORKER, FLOWS, JOB_WAIT_S, connected


def test_the_worker_follows_the_fleet_when_its_conductor_dies(procs):
    etcd = procs.etcd()
    first = procs.conductor("py-fleet-a", FLOWS, etcd=etcd, prefix="/py-fleet/")
    # The second conductor starts once the job runs on the first (so the first claims
    # it); the worker knows its address from the start.
    second_port = harness.free_port()
    worker = procs.worker("py-w", E2E_WORKER, "py-w", first.endpoint, f"127.0.0.1:{second_port}")
    with harness.client(first) as on_first:
        harness.wait_for("the worker on the first conductor", lambda: connected(on_first, "py-w"))
        job = on_first.post("sleepy", {"seconds": 4})
        harness.wait_for("the first attempt", lambda: f"sleeping {job.id}/nap/1 on py-w" in worker.log_tail())
    second = procs.conductor("py-fleet-b", FLOWS, etcd=etcd, prefix="/py-fleet/", port=second_port)
    first.kill()
    with harness.client(second) as on_second:
        harness.wait_for("the worker on the second conductor", lambda: connected(on_second, "py-w"))
        done = on_second.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert (done.results["nap"]["ran_on"], done.results["nap"]["attempt"]) == ("py-w", 2)
        assert done.tasks["nap"].executions == 2
        assert "attached to conductor py-fleet-b" in worker.log_tail()
