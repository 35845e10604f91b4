"""`Worker`: registers task functions by name and runs them for Baton's conductors over
the `baton.v1.Workers/Attach` stream, reconnecting through its endpoint list until it is
shut down (SIGTERM/SIGINT under `run()`: drain, finish, half-close)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import random
import secrets
import signal
import socket
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from baton import __version__
from baton._assignment import run_assignment
from baton._channel import Credentials, Pem
from baton._context import Context
from baton._duration import to_millis
from baton._session import Session
from baton._task import TaskDef
from baton.v1 import worker_pb2

log = logging.getLogger("baton.worker")

# Back-off between rounds over the endpoint list when none of them answers.
_BACKOFF_MIN_S = 0.1
_BACKOFF_MAX_S = 5.0
# A stream that ends sooner than this after its Welcome does not reset the back-off
# (a conductor that welcomes and drops at once must not make the worker spin).
_SHORT_SESSION_S = 1.0
# `Context.action` by the Assign's action.
_ACTIONS = {worker_pb2.ACTION_REVERT: "revert", worker_pb2.ACTION_PARKED: "parked"}


@dataclasses.dataclass
class _Running:
    assign: worker_pb2.Assign
    ctx: Context
    task: "asyncio.Task[None]"


class Worker:
    """A Baton worker process's tasks and its connection to the fleet.

    `endpoints`: conductor addresses ("host:port" or "http://host:port"), tried in order,
    the next one whenever a stream ends. `slots`: how many assignments run at once.
    `worker_id`: unique per process, "<host>-<pid>-<random>" by default. `labels`: shown
    by `baton workers`. `connect_timeout`: how long a conductor may take to answer the
    Hello. `shutdown_grace`: on shutdown, how long running tasks may take before they are
    cancelled (None: as long as they need). A secured conductor ("https://host:port"):
    `token` (or `token_file`), `ca`, `cert` and `key` as for `Client`; the token's
    identity needs the `worker` role. Credentials a conductor refuses (UNAUTHENTICATED,
    PERMISSION_DENIED) end `run` with `WorkerRejected` saying why.
    """

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        slots: int = 8,
        worker_id: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        connect_timeout: Union[str, float] = 10.0,
        shutdown_grace: Union[str, float, None] = None,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        ca: Optional[Pem] = None,
        cert: Optional[Pem] = None,
        key: Optional[Pem] = None,
    ) -> None:
        self.credentials = Credentials.resolve(token, token_file, ca, cert, key)
        self.endpoints: List[str] = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not self.endpoints:
            raise ValueError("a Worker needs at least one conductor endpoint")
        if slots < 1:
            raise ValueError(f"slots must be at least 1, not {slots}")
        self.slots = slots
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.labels: Dict[str, str] = dict(labels or {})
        self.connect_timeout = to_millis(connect_timeout) / 1000
        self.shutdown_grace = None if shutdown_grace is None else to_millis(shutdown_grace) / 1000
        self.tasks: Dict[str, TaskDef] = {}
        self._running: Dict[str, _Running] = {}
        self._session: Optional[Session] = None
        # Results of assignments that ended between a reconnect's Hello (which listed them
        # as running) and its Welcome: the new conductor holds their slots until they come.
        self._unsent: List[worker_pb2.Result] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._stopping: Optional[asyncio.Event] = None
        self._stop_requests = 0
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None

    # ------------------------------------------------------------------ registration

    def task(self, name: str, *, timeout: Union[str, float, None] = None) -> Callable[[Callable[..., Any]], TaskDef]:
        """Registers the decorated function as the worker task `name` (what a flow file
        names with `kind: remote` and `with: {task: NAME}`). It is called as
        `fn(ctx, **inputs)` and its return value (JSON) is the task's result. `timeout`
        ("5m", seconds, a timedelta) is its default execution timeout; a flow's own
        `timeout` overrides it. Async functions run in the worker's loop, plain ones in
        a thread."""
        if not name:
            raise ValueError("a task needs a name")
        default_timeout_ms = to_millis(timeout)

        def register(fn: Callable[..., Any]) -> TaskDef:
            if name in self.tasks:
                raise ValueError(f"task {name!r} is registered twice")
            taskdef = TaskDef(name, fn, default_timeout_ms)
            self.tasks[name] = taskdef
            return taskdef

        return register

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        """Runs the worker until SIGTERM or SIGINT (a second one cancels running tasks)."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(self.serve(handle_signals=True))

    async def serve(self, *, handle_signals: bool = False) -> None:
        """The worker's life in a running event loop: returns once shut down. Raises
        WorkerRejected if a conductor refuses the Hello as malformed."""
        if not self.tasks:
            raise ValueError("the worker has no tasks: register some with @worker.task(name)")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(self.slots, thread_name_prefix="baton-task")
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._request_stop)
        try:
            await self._connect_loop()
        finally:
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(signum)
            await self._stop_running("the worker is stopping")
            self._executor.shutdown(wait=False)
            log.info("worker %s stopped", self.worker_id)

    def shutdown(self) -> None:
        """Asks the worker to stop: no new assignments (Slots 0), running tasks finish,
        then the stream is half-closed and `run()`/`serve()` return. A second call
        cancels the running tasks. Safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._request_stop()
        else:
            loop.call_soon_threadsafe(self._request_stop)

    async def _connect_loop(self) -> None:
        assert self._stopping is not None
        index = 0
        failed_in_a_row = 0
        backoff = _BACKOFF_MIN_S
        while not self._stopping.is_set():
            endpoint = self.endpoints[index % len(self.endpoints)]
            index += 1
            session = Session(self, endpoint)
            try:
                await session.run(self._hello(), self.connect_timeout)
            finally:
                if self._session is session:
                    self._session = None
            if session.connected:
                if self._stopping.is_set():
                    return
                if session.lasted() >= _SHORT_SESSION_S:
                    failed_in_a_row, backoff = 0, _BACKOFF_MIN_S
                    continue  # straight on to the next endpoint
                # Welcomed, then dropped at once: back off as if it had not answered.
            failed_in_a_row += 1
            if failed_in_a_row % len(self.endpoints) == 0:
                log.warning("no conductor of %s answered; trying again in %.1fs", self.endpoints, backoff)
                await self._sleep_unless_stopping(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _hello(self) -> worker_pb2.Hello:
        self._unsent.clear()  # ended before this Hello: not listed, nobody waits for them
        return worker_pb2.Hello(
            worker_id=self.worker_id,
            tasks=[
                worker_pb2.TaskOffer(
                    name=t.name, can_revert=t.revert_fn is not None, default_timeout_ms=t.default_timeout_ms
                )
                for t in self.tasks.values()
            ],
            slots=self.slots,
            labels=self.labels,
            sdk=f"baton-python/{__version__}",
            running=[
                worker_pb2.RunningAssignment(
                    dispatch_id=r.assign.dispatch_id, job_id=r.assign.job_id, atom=r.assign.atom, attempt=r.assign.attempt
                )
                for r in self._running.values()
            ],
        )

    # ------------------------------------------------------------------ called by the session

    def _session_started(self, session: Session) -> None:
        self._session = session
        for result in self._unsent:
            session.send(worker_pb2.WorkerMessage(result=result))
        self._unsent.clear()
        if self._stopping is not None and self._stopping.is_set():
            self._drain(session)

    def _assigned(self, session: Session, assign: worker_pb2.Assign) -> None:
        if assign.dispatch_id in self._running:
            log.warning("dispatch %s assigned twice; the second is ignored", assign.dispatch_id)
            return
        if len(self._running) >= self.slots:
            log.warning("assignment %s beyond this worker's %d slots (conductor's credit bug?)", assign.dispatch_id, self.slots)
        ctx = Context(
            dispatch_id=assign.dispatch_id,
            action=_ACTIONS.get(assign.action, "execute"),
            task=assign.task,
            job_id=assign.job_id,
            atom=assign.atom,
            attempt=assign.attempt,
            idempotency_key=assign.idempotency_key,
            timeout_ms=assign.timeout_ms,
            heartbeat_timeout_ms=assign.heartbeat_timeout_ms,
            worker_id=self.worker_id,
            conductor=session.conductor,
            send_progress=self._progress,
        )
        task = asyncio.create_task(self._run(assign, ctx, session.max_result_bytes))
        self._running[assign.dispatch_id] = _Running(assign, ctx, task)

    def _cancelled(self, cancel: worker_pb2.Cancel) -> None:
        running = self._running.get(cancel.dispatch_id)
        if running is None:
            return  # finished already: its Result is on its way or was sent
        log.info("dispatch %s (%s) cancelled: %s", cancel.dispatch_id, running.assign.task, cancel.reason)
        running.ctx._cancel(cancel.reason or "cancelled")
        running.task.cancel()

    def _free_slots(self) -> int:
        return max(0, self.slots - len(self._running))

    # ------------------------------------------------------------------ assignments

    async def _run(self, assign: worker_pb2.Assign, ctx: Context, max_result_bytes: int) -> None:
        assert self._executor is not None
        taskdef = self.tasks.get(assign.task)
        try:
            result = await run_assignment(assign, taskdef, ctx, self._executor, max_result_bytes)
        finally:
            self._running.pop(assign.dispatch_id, None)
        session = self._session
        if session is not None:
            session.send(worker_pb2.WorkerMessage(result=result))
        else:
            # The stream that carried it is gone (its conductor failed the attempt as
            # WorkerLost); the next Hello lists it as running, or it ended before that.
            self._unsent.append(result)
        assert self._stopping is not None
        if not self._running and self._stopping.is_set() and session is not None:
            session.half_close()

    def _progress(self, dispatch_id: str, details_json: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        message = worker_pb2.WorkerMessage(progress=worker_pb2.Progress(dispatch_id=dispatch_id, details_json=details_json))
        if threading.get_ident() == self._loop_thread:
            self._send(message)
        else:
            loop.call_soon_threadsafe(self._send, message)

    def _send(self, message: worker_pb2.WorkerMessage) -> None:
        if self._session is not None:
            self._session.send(message)

    # ------------------------------------------------------------------ shutdown

    def _request_stop(self) -> None:
        assert self._stopping is not None
        self._stop_requests += 1
        if self._stop_requests > 1:
            log.info("second stop request: cancelling %d running task(s)", len(self._running))
            self._cancel_all("the worker is stopping now")
            return
        log.info("worker %s stopping: no new tasks, waiting for %d running", self.worker_id, len(self._running))
        self._stopping.set()
        if self._session is not None:
            self._drain(self._session)
        if self.shutdown_grace is not None:
            assert self._loop is not None
            self._loop.call_later(self.shutdown_grace, self._cancel_all, "shutdown grace period over")

    def _drain(self, session: Session) -> None:
        session.send(worker_pb2.WorkerMessage(slots=worker_pb2.Slots(slots=0)))
        if not self._running:
            session.half_close()

    def _cancel_all(self, reason: str) -> None:
        for running in list(self._running.values()):
            running.ctx._cancel(reason)
            running.task.cancel()

    async def _stop_running(self, reason: str) -> None:
        """Stops what still runs once no stream is left to report it on (nobody waits for
        those results any more: their conductor failed them when the stream ended)."""
        self._cancel_all(reason)
        tasks = [r.task for r in self._running.values()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
