"""The Python worker of the end-to-end tests: `e2e.py NAME ENDPOINT...`.

Tasks: "py.append" adds "<tag>@<NAME>" to a list (results flow between workers), also
offered as "py.NAME.append" (only this worker runs that one);
"py.hang" waits until cancelled, printing "cancelled <job>" when it is; "py.sleep"
sleeps `seconds` (`retry_seconds` after the first attempt, if given) and says where it ran (printing "sleeping KEY", then "slept KEY" or
"sleep cancelled KEY (reason)"); "py.bounded" sleeps `seconds` under
a default timeout of 1 s; "py.beat" runs
`seconds`, calling ctx.heartbeat every `every` seconds (0: never); "py.hold" holds its slot `ms` milliseconds and returns
the most tasks this process has run at once; "py.approve" parks for `timeout` and its
parked handler writes the callback's token and URL to `DIR/token` and `DIR/url` (it
prints only that it handed one out: a token is never logged). Slots: $SLOTS or 4."""

import asyncio
import os
import pathlib
import sys

import baton

NAME = sys.argv[1]
worker = baton.Worker(sys.argv[2:], slots=int(os.environ.get("SLOTS", "4")), worker_id=NAME)


@worker.task("py.append")
async def append(ctx, trail: list, tag: str) -> list:
    return [*trail, f"{tag}@{NAME}"]


worker.task(f"py.{NAME}.append")(append.fn)


@append.revert
async def unappend(ctx, trail: list, tag: str, result, failure) -> None:
    print(f"reverted {ctx.atom} of {ctx.job_id} on {NAME}", flush=True)


@worker.task("py.hang")
async def hang(ctx) -> None:
    print(f"hanging {ctx.job_id}", flush=True)
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print(f"cancelled {ctx.job_id}", flush=True)
        raise


@worker.task("py.sleep")
async def sleep(ctx, seconds: float, retry_seconds: float = -1) -> dict:
    print(f"sleeping {ctx.idempotency_key} on {NAME}", flush=True)
    ctx.heartbeat()
    try:
        await asyncio.sleep(seconds if ctx.attempt == 1 or retry_seconds < 0 else retry_seconds)
    except asyncio.CancelledError:
        print(f"sleep cancelled {ctx.idempotency_key} ({ctx.cancel_reason})", flush=True)
        raise
    print(f"slept {ctx.idempotency_key}", flush=True)
    return {"ran_on": NAME, "attempt": ctx.attempt, "key": ctx.idempotency_key}


@worker.task("py.bounded", timeout="1s")
async def bounded(ctx, seconds: float) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        print(f"bounded cancelled {ctx.job_id} ({ctx.cancel_reason})", flush=True)
        raise
    return "in time"


@worker.task("py.beat")
async def beat(ctx, seconds: float, every: float) -> int:
    beats = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if every > 0:
            ctx.heartbeat({"beats": beats})
            beats += 1
        await asyncio.sleep(every if every > 0 else seconds)
    return beats


RUNNING = {"now": 0, "peak": 0}


@worker.task("py.hold")
async def hold(ctx, ms: int) -> dict:
    RUNNING["now"] += 1
    RUNNING["peak"] = max(RUNNING["peak"], RUNNING["now"])
    try:
        await asyncio.sleep(ms / 1000)
    finally:
        RUNNING["now"] -= 1
    return {"peak": RUNNING["peak"], "worker": NAME}


@worker.task("py.approve")
def approve(ctx, dir: str, timeout: str = "1h") -> baton.Park:
    print(f"parking {ctx.atom} of {ctx.job_id} on {NAME}", flush=True)
    return baton.Park(timeout=timeout)


@approve.parked
def hand_out(ctx, dir: str, callback: baton.Callback, timeout: str = "1h") -> None:
    folder = pathlib.Path(dir)
    (folder / "url").write_text(callback.url)
    (folder / "token.tmp").write_text(callback.token)
    (folder / "token.tmp").rename(folder / "token")  # whole, or not there yet
    print(f"handed out the token of {ctx.atom} of {ctx.job_id} on {NAME} ({callback!r})", flush=True)


if __name__ == "__main__":
    worker.run()
