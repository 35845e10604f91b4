"""The benchmark's worker: one no-op task, `noop_worker.py SLOTS ENDPOINT...`."""

import sys

import baton

worker = baton.Worker(sys.argv[2:], slots=int(sys.argv[1]), worker_id="bench-python")


@worker.task("bench.noop")
async def noop(ctx) -> None:
    return None


if __name__ == "__main__":
    worker.run()
