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
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import harness  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children, from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=200, help="no-op remote tasks per job")
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--release", action="store_true", help="use target/release binaries")
    parser.add_argument(
        "--worker", choices=["python", "rust"], default="python",
        help="rust: the Rust SDK's test_worker instead, for comparison on the same path",
    )
    args = parser.parse_args()
    if args.release:
        os.environ.setdefault("BATON_BIN_DIR", str(harness.REPO / "target" / "release"))

    started = []
    try:
        conductor = harness.Conductor(
            "bench-py", HERE, extra=["--concurrency", str(args.slots), "--max-jobs", str(args.jobs)]
        )
        started.append(conductor)
        if args.worker == "python":
            worker = harness.WorkerProcess("bench-worker", HERE / "noop_worker.py", str(args.slots), conductor.endpoint)
        else:
            worker = harness.Process(
                "bench-worker",
                [str(harness.binary("test_worker")), "--endpoints", f"http://{conductor.endpoint}",
                 "--id", "bench-rust", "--slots", str(args.slots)],
            )
        started.append(worker)
        with harness.client(conductor) as client:
            harness.wait_for("the worker", lambda: any(w.worker_id.startswith("bench-") for w in client.workers()))
            # Warm-up: one small job through the whole path.
            client.wait(client.post("bench-noop", {"count": 10}).id, timeout=60)
            begin = time.perf_counter()
            cpu_before = {p.name: cpu_seconds(p.pid) for p in started}
            ids = [client.post("bench-noop", {"count": args.tasks}).id for _ in range(args.jobs)]
            for job_id in ids:
                job = client.wait(job_id, timeout=600)
                if not job.succeeded:
                    print(f"job {job_id} ended {job.state}/{job.outcome}: {job.failure}", file=sys.stderr)
                    return 1
            elapsed = time.perf_counter() - begin
            cpu = {p.name: cpu_seconds(p.pid) - cpu_before[p.name] for p in started}
        total = args.jobs * args.tasks
        print(
            f"{args.worker} worker ({args.slots} slots), {args.jobs} jobs x {args.tasks} no-op remote tasks: "
            f"{total} tasks in {elapsed:.2f}s = {total / elapsed:,.0f} tasks/s; CPU: conductor "
            f"{cpu['bench-py']:.2f}s, worker {cpu['bench-worker']:.2f}s "
            f"({1e6 * cpu['bench-worker'] / total:.0f} us per task)"
        )
        return 0
    finally:
        for process in reversed(started):
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
