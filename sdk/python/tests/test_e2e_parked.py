"""A Python worker parks a task (issue 11): its execute returns `baton.Park`, the
conductor records the park and sends the task's parked handler the callback token (and
the webhook URL); the real `baton complete TOKEN --result ...` resumes the job, and the
delivered result flows to the next remote task. The token's secret appears in no log
line of the conductor or the worker."""

from __future__ import annotations

import os
import pathlib
import subprocess

import harness

TESTS = pathlib.Path(__file__).parent
FLOWS = TESTS / "flows" / "e2e"
E2E_WORKER = TESTS / "workers" / "e2e.py"
JOB_WAIT_S = 60


def baton_cli(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    return subprocess.run(
        [str(harness.binary("baton")), "--endpoint", f"http://{endpoint}", *args],
        capture_output=True, text=True, timeout=JOB_WAIT_S, env=env,
    )


def test_a_parked_python_task_resumes_with_the_delivered_result(procs, tmp_path):
    http = harness.free_port()
    base = f"http://127.0.0.1:{http}"
    conductor = procs.conductor(
        "py-park", FLOWS, extra=["--http-listen", f"127.0.0.1:{http}", "--http-advertise", base]
    )
    worker = procs.worker("py-p", E2E_WORKER, "py-p", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: any(w.worker_id == "py-p" for w in client.workers()))
        job = client.post("py-approval", {"dir": str(tmp_path)})
        token_file = tmp_path / "token"
        token = harness.wait_for("the parked handler to get the token", lambda: token_file.exists() and token_file.read_text())
        # The URL is the conductor's webhook for this very token.
        assert (tmp_path / "url").read_text() == f"{base}/v1/callbacks/{token}"
        parked = harness.wait_for("the job to park", lambda: (j := client.get(job.id)).state == "PARKED" and j)
        assert parked.tasks["approve"].state == "PARKED", parked.tasks["approve"]
        assert "record" not in parked.results

        completed = baton_cli(conductor.endpoint, "complete", token, "--result", '["approved"]')
        assert completed.returncode == 0, completed.stderr

        done = client.wait(job.id, timeout=JOB_WAIT_S)
        assert done.succeeded, done
        assert done.results["approve"] == ["approved"]
        assert done.results["record"] == ["approved", "recorded@py-p"]
        # The same completion again is OK (already completed); a wrong token is NOT_FOUND.
        assert baton_cli(conductor.endpoint, "complete", token, "--result", '["approved"]').returncode == 0
        guessed = token[: -len(token.rsplit(".", 1)[-1])] + "a" * 64
        wrong = baton_cli(conductor.endpoint, "complete", guessed, "--result", "1")
        assert wrong.returncode != 0 and "no parked task matches" in wrong.stderr, wrong.stderr
    secret = token.rsplit(".", 1)[-1]
    assert len(secret) >= 32, token
    assert secret not in conductor.log()
    assert secret not in worker.log()
    assert "handed out the token of approve" in worker.log_tail()


def test_a_task_that_parks_without_a_parked_handler_fails_at_once(procs, tmp_path):
    conductor = procs.conductor("py-park-bare", FLOWS)
    procs.worker("py-q", TESTS / "workers" / "bare_park.py", conductor.endpoint)
    with harness.client(conductor) as client:
        harness.wait_for("the worker", lambda: any(w.worker_id == "py-q" for w in client.workers()))
        job = client.post("py-bare-park", {})
        done = client.wait(job.id, timeout=JOB_WAIT_S)
        assert done.outcome == "REVERTED", done
        failure = done.tasks["bare"].failure
        assert failure is not None and failure.kind == "NoParkedHandler", done.tasks["bare"]
