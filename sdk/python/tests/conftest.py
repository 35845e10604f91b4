"""Shared test helpers: running async test bodies with a deadline, and the worker life
cycle around them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import AsyncIterator, Awaitable, Callable

import baton

sys.path.insert(0, os.path.dirname(__file__))

# Every async test body is bounded: a hung stream fails the test instead of CI.
TEST_DEADLINE_S = 60.0


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), TEST_DEADLINE_S))


@contextlib.asynccontextmanager
async def serving(worker: baton.Worker) -> AsyncIterator["asyncio.Task[None]"]:
    """Runs `worker.serve()` for the block; shuts it down (twice: cancelling what still
    runs) and waits for it to return afterwards."""
    task = asyncio.create_task(worker.serve())
    try:
        yield task
    finally:
        if not task.done():
            worker.shutdown()
            worker.shutdown()
            await asyncio.wait_for(asyncio.shield(task), 20)
