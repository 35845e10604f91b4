"""A worker process for the signal tests: `sleepy.py ENDPOINT...` runs task "sleep"
(sends a heartbeat when it starts, sleeps `seconds`, returns "slept") until SIGTERM/SIGINT."""

import asyncio
import sys

import baton

worker = baton.Worker(sys.argv[1:], slots=2, worker_id="sleepy")


@worker.task("sleep")
async def sleep(ctx, seconds: float) -> str:
    ctx.heartbeat("started")
    await asyncio.sleep(seconds)
    return "slept"


if __name__ == "__main__":
    worker.run()
