"""Benchmark (not a test): no-op remote tasks per second through a real conductor with
one Python worker.

    python sdk/python/bench/noop_throughput.py [--jobs 20] [--tasks 200] [--slots 64]

Starts a `conductor` (target/debug, or $BATON_BIN_DIR; embedded board in a temp dir,
--concurrency = slots) with bench/noop.yaml, one Python worker (noop_worker.py) with
`--slots` slots, posts `--jobs` jobs of `--tasks` no-op remote tasks each, all at once,
and prints tasks/s from the first post to the last job's end. Every remote task is a
full dispatch: RUNNING and the result written to the logbook, an Assign and a Result
on the worker's stream. Both processes are SIGKILLed at the end."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=200, help="no-op remote tasks per job")
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--release", action="store_true", help="use target/release binaries")
    args = parser.parse_args()
    if args.release:
        import os

        os.environ.setdefault("BATON_BIN_DIR", str(harness.REPO / "target" / "release"))

    started = []
    try:
        conductor = harness.Conductor(
            "bench-py", HERE, extra=["--concurrency", str(args.slots), "--max-jobs", str(args.jobs)]
        )
        started.append(conductor)
        worker = harness.WorkerProcess("bench-worker", HERE / "noop_worker.py", str(args.slots), conductor.endpoint)
        started.append(worker)
        with harness.client(conductor) as client:
            harness.wait_for("the worker", lambda: any(w.worker_id == "bench-python" for w in client.workers()))
            # Warm-up: one small job through the whole path.
            client.wait(client.post("bench-noop", {"count": 10}).id, timeout=60)
            begin = time.perf_counter()
            ids = [client.post("bench-noop", {"count": args.tasks}).id for _ in range(args.jobs)]
            for job_id in ids:
                job = client.wait(job_id, timeout=600)
                if not job.succeeded:
                    print(f"job {job_id} ended {job.state}/{job.outcome}: {job.failure}", file=sys.stderr)
                    return 1
            elapsed = time.perf_counter() - begin
        total = args.jobs * args.tasks
        print(
            f"python worker ({args.slots} slots), {args.jobs} jobs x {args.tasks} no-op remote tasks: "
            f"{total} tasks in {elapsed:.2f}s = {total / elapsed:,.0f} tasks/s"
        )
        return 0
    finally:
        for process in reversed(started):
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
