"""A worker process (worker.run()) under SIGTERM / SIGINT: Slots{0}, the running task
finishes and its Result is sent, the stream is half-closed, the process exits 0; a second
signal cancels what still runs."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from conftest import run
from fake_conductor import FakeConductor, assign

SLEEPY = pathlib.Path(__file__).parent / "workers" / "sleepy.py"


async def start_sleepy(endpoint: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SLEEPY), endpoint, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def exit_code(process: asyncio.subprocess.Process) -> int:
    try:
        return await asyncio.wait_for(process.wait(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_finishes_and_half_closes(signum):
    async def body():
        conductor = await FakeConductor("c1").start()
        process = await start_sleepy(conductor.endpoint)
        try:
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "sleep", '{"seconds": 1.0}'))
            await stream.next("progress")
            os.kill(process.pid, signum)
            assert (await stream.next("slots")).slots == 0
            result = await stream.next("result")
            assert (result.dispatch_id, result.success.result_json) == ("d-1", '"slept"')
            await stream.half_close()
            assert await exit_code(process) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await conductor.stop()

    run(body)


def test_a_second_signal_cancels_the_running_task():
    async def body():
        conductor = await FakeConductor("c1").start()
        process = await start_sleepy(conductor.endpoint)
        try:
            stream = await conductor.stream()
            stream.send(assign=assign("d-1", "sleep", '{"seconds": 3600}'))
            await stream.next("progress")
            os.kill(process.pid, signal.SIGTERM)
            assert (await stream.next("slots")).slots == 0
            os.kill(process.pid, signal.SIGTERM)
            result = await stream.next("result")
            assert (result.dispatch_id, result.failure.kind) == ("d-1", "Cancelled")
            await stream.half_close()
            assert await exit_code(process) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await conductor.stop()

    run(body)
