"""A worker whose task returns `baton.Park` but registers no parked handler: the SDK
fails the attempt ("NoParkedHandler") instead of parking a task whose token would reach
nobody. `bare_park.py ENDPOINT...`."""

import sys

import baton

worker = baton.Worker(sys.argv[1:], slots=2, worker_id="py-q")


@worker.task("py.bare_park")
def bare(ctx) -> baton.Park:
    return baton.Park(timeout="1h")


if __name__ == "__main__":
    worker.run()
