"""A scripted conductor for the SDK's protocol tests: a real gRPC server on a free
loopback port serving `baton.v1.Workers/Attach`, whose every stream the test drives by
hand (what to send, when to fall silent) and whose received messages it inspects.

It checks nothing the real conductor checks (tests/test_e2e_*.py run the real one); it
exists to make the worker side's half of the protocol observable message by message."""

from __future__ import annotations

import asyncio
from typing import List, Optional

import grpc
import grpc.aio

from baton.v1 import worker_pb2, worker_pb2_grpc

# Generous: the machine is shared; waits end as soon as the awaited message arrives.
WAIT_S = 15.0


class Stream:
    """One accepted Attach stream, as the conductor sees it."""

    def __init__(self, hello: worker_pb2.Hello) -> None:
        self.hello = hello
        self.received: "asyncio.Queue[Optional[worker_pb2.WorkerMessage]]" = asyncio.Queue()
        self.outbox: "asyncio.Queue[Optional[worker_pb2.ConductorMessage]]" = asyncio.Queue()
        self.heartbeats = 0
        self.half_closed = False
        # Set to stop this conductor's own heartbeats (a live TCP connection, no answers).
        self.silent = False

    def send(self, **message: object) -> None:
        self.outbox.put_nowait(worker_pb2.ConductorMessage(**message))

    def close(self) -> None:
        """Ends the stream from the conductor's side (status OK)."""
        self.outbox.put_nowait(None)

    async def next(self, kind: str, timeout: float = WAIT_S) -> worker_pb2.WorkerMessage:
        """The next message of `kind` ("result", "progress", "slots", ...), skipping
        heartbeats; fails on any other kind or on the half-close."""
        while True:
            message = await asyncio.wait_for(self.received.get(), timeout)
            if message is None:
                raise AssertionError(f"stream half-closed while waiting for {kind}")
            got = message.WhichOneof("msg")
            if got == "heartbeat":
                continue
            assert got == kind, f"expected {kind}, got {message}"
            return getattr(message, kind)

    async def half_close(self, timeout: float = WAIT_S) -> None:
        """Waits for the worker to close its sending side, skipping heartbeats."""
        while True:
            message = await asyncio.wait_for(self.received.get(), timeout)
            if message is None:
                return
            assert message.WhichOneof("msg") == "heartbeat", f"expected the half-close, got {message}"


class FakeConductor(worker_pb2_grpc.WorkersServicer):
    def __init__(
        self,
        name: str,
        *,
        heartbeat_interval_ms: int = 200,
        heartbeat_timeout_ms: int = 2000,
        max_result_bytes: int = 1 << 20,
        reject: Optional[grpc.StatusCode] = None,
    ) -> None:
        self.name = name
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.max_result_bytes = max_result_bytes
        self.reject = reject
        self.streams: "asyncio.Queue[Stream]" = asyncio.Queue()
        self.hellos: List[worker_pb2.Hello] = []
        self.server: Optional[grpc.aio.Server] = None
        self.endpoint = ""

    async def start(self) -> "FakeConductor":
        self.server = grpc.aio.server()
        worker_pb2_grpc.add_WorkersServicer_to_server(self, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.endpoint = f"127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)

    async def stream(self, timeout: float = WAIT_S) -> Stream:
        """The next stream a worker opens (after its Hello was welcomed)."""
        return await asyncio.wait_for(self.streams.get(), timeout)

    async def Attach(self, request_iterator, context):  # noqa: N802 (gRPC's name)
        first = await request_iterator.__anext__()
        assert first.WhichOneof("msg") == "hello", f"first message must be a Hello, got {first}"
        self.hellos.append(first.hello)
        if self.reject is not None:
            await context.abort(self.reject, f"{self.name} refuses this Hello")
        stream = Stream(first.hello)
        yield worker_pb2.ConductorMessage(
            welcome=worker_pb2.Welcome(
                conductor=self.name,
                heartbeat_interval_ms=self.heartbeat_interval_ms,
                heartbeat_timeout_ms=self.heartbeat_timeout_ms,
                max_result_bytes=self.max_result_bytes,
            )
        )
        self.streams.put_nowait(stream)

        async def read() -> None:
            async for message in request_iterator:
                if message.WhichOneof("msg") == "heartbeat":
                    stream.heartbeats += 1
                stream.received.put_nowait(message)
            stream.half_closed = True
            stream.received.put_nowait(None)

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_interval_ms / 1000)
                if not stream.silent:
                    stream.send(heartbeat=worker_pb2.Heartbeat())

        tasks = [asyncio.create_task(read()), asyncio.create_task(beat())]
        try:
            while True:
                getter = asyncio.ensure_future(stream.outbox.get())
                done, _ = await asyncio.wait({getter, tasks[0]}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return  # the worker half-closed: nothing unanswered here, close too
                message = getter.result()
                if message is None:
                    return
                yield message
        finally:
            for task in tasks:
                task.cancel()


def assign(
    dispatch_id: str,
    task: str,
    inputs: str = "{}",
    *,
    attempt: int = 1,
    job_id: str = "job-1",
    atom: str = "atom",
    action: int = worker_pb2.ACTION_EXECUTE,
    **extra: object,
) -> worker_pb2.Assign:
    return worker_pb2.Assign(
        dispatch_id=dispatch_id,
        action=action,
        task=task,
        job_id=job_id,
        atom=atom,
        attempt=attempt,
        idempotency_key=f"{job_id}/{atom}/{attempt}",
        inputs_json=inputs,
        **extra,
    )
