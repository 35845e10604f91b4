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


# ---------------------------------------------------------------- real processes

import pytest  # noqa: E402

import harness  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def procs(request):
    """Starts real processes for a test (`procs.etcd()`, `procs.conductor(...)`,
    `procs.worker(...)`, `procs.process(name, command)`) and SIGKILLs them all afterwards, printing their logs when the
    test failed."""

    class Procs:
        def __init__(self) -> None:
            self.started: list = []

        def etcd(self) -> harness.Etcd:
            return self._keep(harness.Etcd())

        def conductor(self, *args, **kwargs) -> harness.Conductor:
            return self._keep(harness.Conductor(*args, **kwargs))

        def worker(self, *args, **kwargs) -> harness.WorkerProcess:
            return self._keep(harness.WorkerProcess(*args, **kwargs))

        def process(self, name: str, command) -> harness.Process:
            return self._keep(harness.Process(name, command))

        def _keep(self, process):
            self.started.append(process)
            return process

    procs = Procs()
    yield procs
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for process in reversed(procs.started):
        process.kill()
        if failed:
            print(f"\n----- log of {process.name} (pid {process.pid}) -----\n{process.log_tail()}")
