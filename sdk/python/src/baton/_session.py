"""One `Workers.Attach` stream to one conductor: Hello, Welcome, then messages both ways
until the stream ends, the conductor falls silent, or the worker half-closes it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Optional, Union

import grpc
import grpc.aio

from baton._channel import open_channel
from baton.v1 import worker_pb2, worker_pb2_grpc

if TYPE_CHECKING:
    from baton._worker import Worker

log = logging.getLogger("baton.worker")

# Used when a Welcome leaves a field at 0 ("none" is not a sensible liveness setting).
_DEFAULT_HEARTBEAT_INTERVAL_MS = 2000
_DEFAULT_HEARTBEAT_TIMEOUT_MS = 10000
# After the worker half-closes, how long the conductor may take to close its side.
_CLOSE_WAIT_S = 10.0
# The sentinel on the send queue that half-closes the stream.
_HALF_CLOSE = None


class WorkerRejected(Exception):
    """A conductor refused this worker's Hello (INVALID_ARGUMENT): a bug to fix, not a
    network problem, so the worker stops instead of trying other conductors."""


class Session:
    """A stream's life. `connected` tells whether a Welcome came (the worker resets its
    back-off then); `run` returns when the stream is over, whatever the reason."""

    def __init__(self, worker: "Worker", endpoint: str) -> None:
        self.worker = worker
        self.endpoint = endpoint
        self.connected = False
        self.conductor = ""
        self.max_result_bytes = 0
        self._queue: "asyncio.Queue[Union[worker_pb2.WorkerMessage, None]]" = asyncio.Queue()
        self._half_closed = False
        self._last_heard = time.monotonic()
        self._welcomed_at: Optional[float] = None

    def lasted(self) -> float:
        """Seconds from the Welcome to now (0 if none came)."""
        return 0.0 if self._welcomed_at is None else time.monotonic() - self._welcomed_at

    def send(self, message: worker_pb2.WorkerMessage) -> None:
        """Queues a message for the conductor (dropped once the stream is half-closed)."""
        if not self._half_closed:
            self._queue.put_nowait(message)

    def half_close(self) -> None:
        """Closes the sending side after what is queued: the end of a graceful shutdown."""
        if not self._half_closed:
            self._half_closed = True
            self._queue.put_nowait(_HALF_CLOSE)

    async def run(self, hello: worker_pb2.Hello, connect_timeout: float) -> None:
        channel = open_channel(self.endpoint, self.worker.credentials)
        call: Optional[grpc.aio.StreamStreamCall] = None
        helpers: list[asyncio.Task] = []
        try:
            call = worker_pb2_grpc.WorkersStub(channel).Attach(metadata=self.worker.credentials.metadata())
            await call.write(worker_pb2.WorkerMessage(hello=hello))
            first = await asyncio.wait_for(call.read(), connect_timeout)
            if first is grpc.aio.EOF or first.WhichOneof("msg") != "welcome":
                log.warning("conductor at %s answered the Hello with %s, not a Welcome", self.endpoint, first)
                return
            self._welcome(first.welcome)
            reader = asyncio.create_task(self._read(call))
            watcher = asyncio.create_task(self._watch())
            helpers = [asyncio.create_task(self._write(call)), reader, watcher]
            self.worker._session_started(self)
            await asyncio.wait({reader, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                reader.result()  # raises what ended the stream, handled below
        except grpc.aio.AioRpcError as error:
            self._rpc_error(error)
        except asyncio.TimeoutError:
            log.warning("conductor at %s sent no Welcome within %.1fs", self.endpoint, connect_timeout)
        finally:
            for helper in helpers:
                helper.cancel()
            if call is not None:
                call.cancel()
            await channel.close()

    def _welcome(self, welcome: worker_pb2.Welcome) -> None:
        self.connected = True
        self._welcomed_at = time.monotonic()
        self.conductor = welcome.conductor
        self.max_result_bytes = welcome.max_result_bytes
        self.interval_s = (welcome.heartbeat_interval_ms or _DEFAULT_HEARTBEAT_INTERVAL_MS) / 1000
        self.timeout_s = (welcome.heartbeat_timeout_ms or _DEFAULT_HEARTBEAT_TIMEOUT_MS) / 1000
        self._last_heard = time.monotonic()
        log.info(
            "worker %s attached to conductor %s at %s (heartbeat every %.1fs)",
            self.worker.worker_id,
            self.conductor,
            self.endpoint,
            self.interval_s,
        )

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            message = await self._next(call)
            if message is grpc.aio.EOF:
                if not self._half_closed:
                    log.warning("conductor %s closed the stream", self.conductor)
                return
            self._last_heard = time.monotonic()
            kind = message.WhichOneof("msg")
            if kind == "assign":
                self.worker._assigned(self, message.assign)
            elif kind == "cancel":
                self.worker._cancelled(message.cancel)
            elif kind == "error":
                error = message.error
                log.warning(
                    "conductor %s refused a message: %s %s (dispatch %s)",
                    self.conductor,
                    worker_pb2.ProtocolError.Code.Name(error.code),
                    error.message,
                    error.dispatch_id or "-",
                )
            elif kind == "welcome":
                log.warning("conductor %s sent a second Welcome; ignored", self.conductor)
            # heartbeat: hearing anything is what counts, noted above

    async def _next(self, call: grpc.aio.StreamStreamCall) -> object:
        if not self._half_closed:
            return await call.read()
        # Half-closed: the conductor closes its side once nothing is unanswered; a
        # conductor that does not is not waited for forever.
        try:
            return await asyncio.wait_for(call.read(), _CLOSE_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("conductor %s did not close the stream after the worker's half-close", self.conductor)
            return grpc.aio.EOF

    async def _write(self, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            message = await self._queue.get()
            if message is _HALF_CLOSE:
                await call.done_writing()
                return
            await call.write(message)

    async def _watch(self) -> None:
        """Sends a Heartbeat every interval; returns (which ends the stream) when the
        conductor has been silent longer than the Welcome's timeout: it is dead, or the
        path to it is."""
        while True:
            await asyncio.sleep(self.interval_s)
            silent = time.monotonic() - self._last_heard
            if silent > self.timeout_s:
                log.warning(
                    "conductor %s silent for %.1fs (limit %.1fs): leaving it", self.conductor, silent, self.timeout_s
                )
                return
            if not self._half_closed:
                free = self.worker._free_slots()
                self.send(worker_pb2.WorkerMessage(heartbeat=worker_pb2.Heartbeat(free_slots=free)))

    def _rpc_error(self, error: grpc.aio.AioRpcError) -> None:
        code = error.code()
        if code == grpc.StatusCode.CANCELLED and self.connected:
            return  # we cancelled it: a silent conductor, or the worker is stopping
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            raise WorkerRejected(f"conductor at {self.endpoint} refused the worker: {error.details()}")
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            # Every conductor of a fleet shares the auth file: no other endpoint will differ.
            raise WorkerRejected(f"conductor at {self.endpoint} refused the credentials: {code.name} {error.details()}")
        if code == grpc.StatusCode.ALREADY_EXISTS:
            log.warning(
                "conductor at %s still has worker %s connected (%s); trying again",
                self.endpoint,
                self.worker.worker_id,
                error.details(),
            )
            return
        if self.connected:
            log.warning("stream to conductor %s ended: %s %s", self.conductor, code.name, error.details())
        else:
            # One endpoint of several not answering is routine; the worker warns when none does.
            log.info("conductor at %s did not answer: %s %s", self.endpoint, code.name, error.details())
