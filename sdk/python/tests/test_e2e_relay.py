"""Relay: a Python worker connected to one conductor runs the tasks of a job another
conductor claimed (conductor-to-conductor stream); when its conductor dies mid-task, the
worker reconnects to the job's conductor and the attempt is retried there."""

from __future__ import annotations

import harness
from test_e2e_workers import E2E_WORKER, FLOWS, JOB_WAIT_S, connected


def test_a_job_on_one_conductor_runs_on_a_worker_of_another_through_relay(procs):
    etcd = procs.etcd()
    host = procs.conductor("py-relay-host", FLOWS, etcd=etcd, prefix="/py-relay/")
    runner = procs.conductor("py-relay-runner", FLOWS, etcd=etcd, prefix="/py-relay/")
    worker = procs.worker("py-r", E2E_WORKER, "py-r", host.endpoint, runner.endpoint)
    with harness.client(host) as on_host, harness.client(runner) as on_runner:
        harness.wait_for("the worker on the host conductor", lambda: connected(on_host, "py-r"))
        harness.wait_for("the runner to see it", lambda: connected(on_runner, "py-r"))
        on_host.drain("py-relay-host")  # it keeps its worker but claims no job
        relayed = on_runner.wait(on_runner.post("relay-race", {"start": ["go"]}).id, timeout=JOB_WAIT_S)
        assert relayed.succeeded, relayed
        assert relayed.results["leg3"] == ["go", "one@py-r", "two@py-r", "three@py-r"]
        picked = f"job_id={relayed.id} flow=relay-race claims=1}}: conductor::daemon::job_runner: job picked"
        assert picked in runner.log() and picked not in host.log()
        # Then the host dies mid-task: the worker moves to the runner, which retries there.
        job = on_runner.post("sleepy", {"seconds": 3})
        harness.wait_for("the relayed attempt", lambda: f"sleeping {job.id}/nap/1 on py-r" in worker.log_tail())
        host.kill()
        done = on_runner.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert (done.results["nap"]["attempt"], done.tasks["nap"].executions) == (2, 2), done
        assert "attached to conductor py-relay-runner" in worker.log_tail()
