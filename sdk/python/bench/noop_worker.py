"""The benchmark's worker: one no-op task, `noop_worker.py SLOTS ENDPOINT...`."""

import sys

import baton

worker = baton.Worker(sys.argv[2:], slots=int(sys.argv[1]), worker_id="bench-python")


@worker.task("add")  # the name the Rust test_worker offers, so --worker rust runs the same flow
async def noop(ctx) -> None:
    return None


if __name__ == "__main__":
    worker.run()
