"""Benchmark (not a test): how many no-op tasks/s one Python worker process sustains
when the conductor is not the limit.

    python sdk/python/bench/worker_flood.py [--tasks 20000] [--slots 64]

This process plays the conductor's side of `baton.v1.Workers/Attach` and does nothing
else: it welcomes the worker (noop_worker.py, a separate process), keeps `--slots`
assignments in flight (the credit rule), and counts Results. No board, no engine: the
figure is the worker's (its SDK, grpcio and protobuf), bounded by this driver's own
cost per message (also Python), so it is a lower bound on the worker's capacity."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import time

import grpc.aio

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import harness  # noqa: E402
from baton.v1 import worker_pb2, worker_pb2_grpc  # noqa: E402
from noop_throughput import cpu_seconds  # noqa: E402


class Flood(worker_pb2_grpc.WorkersServicer):
    def __init__(self, tasks: int) -> None:
        self.tasks = tasks
        self.done = asyncio.Event()
        self.elapsed = 0.0
        self.worker_cpu = 0.0
        self.worker_pid = 0

    async def Attach(self, request_iterator, context):  # noqa: N802 (gRPC's name)
        hello = (await request_iterator.__anext__()).hello
        yield worker_pb2.ConductorMessage(
            welcome=worker_pb2.Welcome(conductor="flood", heartbeat_interval_ms=1000, heartbeat_timeout_ms=10000)
        )
        credits = asyncio.Queue()
        for _ in range(hello.slots):
            credits.put_nowait(None)
        answered = 0

        async def read() -> None:
            nonlocal answered
            async for message in request_iterator:
                if message.WhichOneof("msg") == "result":
                    answered += 1
                    credits.put_nowait(None)
                    if answered == self.tasks:
                        self.elapsed = time.perf_counter() - begin
                        self.worker_cpu = cpu_seconds(self.worker_pid) - cpu_before
                        self.done.set()

        cpu_before = cpu_seconds(self.worker_pid)
        begin = time.perf_counter()
        reader = asyncio.create_task(read())
        try:
            for n in range(self.tasks):
                await credits.get()
                yield worker_pb2.ConductorMessage(
                    assign=worker_pb2.Assign(
                        dispatch_id=f"d-{n}", action=worker_pb2.ACTION_EXECUTE, task="add", job_id="bench",
                        atom=f"noop[{n}]", attempt=1, idempotency_key=f"bench/noop[{n}]/1", inputs_json="{}",
                    )
                )
            await self.done.wait()
        finally:
            reader.cancel()


async def run(tasks: int, slots: int) -> None:
    flood = Flood(tasks)
    server = grpc.aio.server()
    worker_pb2_grpc.add_WorkersServicer_to_server(flood, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    worker = harness.WorkerProcess("flood-worker", HERE / "noop_worker.py", str(slots), f"127.0.0.1:{port}")
    flood.worker_pid = worker.pid
    try:
        await asyncio.wait_for(flood.done.wait(), 600)
    finally:
        worker.kill()
        await server.stop(grace=None)
    print(
        f"python worker ({slots} slots) against a flood driver: {tasks} no-op tasks in {flood.elapsed:.2f}s = "
        f"{tasks / flood.elapsed:,.0f} tasks/s; worker CPU {flood.worker_cpu:.2f}s "
        f"({1e6 * flood.worker_cpu / tasks:.0f} us per task)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--slots", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run(args.tasks, args.slots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
