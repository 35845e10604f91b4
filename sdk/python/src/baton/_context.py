"""`Context`: what task code is told about the assignment it runs, and its heartbeat."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional


class Context:
    """The first argument of every task function.

    `job_id`, `task` (the worker task name), `atom` (the task's name in the job's flow),
    `attempt` (1 on the first execute, one more on every retry), `idempotency_key`
    ("<job_id>/<atom>/<attempt>": the same when the same attempt is sent again, so use it
    to make side effects idempotent), `action` ("execute", "revert", or "parked" for a parked handler), `dispatch_id`,
    `timeout_ms` and `heartbeat_timeout_ms` (0: none), `worker_id` and `conductor`.
    """

    def __init__(
        self,
        *,
        dispatch_id: str,
        action: str,
        task: str,
        job_id: str,
        atom: str,
        attempt: int,
        idempotency_key: str,
        timeout_ms: int,
        heartbeat_timeout_ms: int,
        worker_id: str,
        conductor: str,
        send_progress: Callable[[str, str], None],
    ) -> None:
        self.dispatch_id = dispatch_id
        self.action = action
        self.task = task
        self.job_id = job_id
        self.atom = atom
        self.attempt = attempt
        self.idempotency_key = idempotency_key
        self.timeout_ms = timeout_ms
        self.heartbeat_timeout_ms = heartbeat_timeout_ms
        self.worker_id = worker_id
        self.conductor = conductor
        self._send_progress = send_progress
        self._cancelled = threading.Event()
        self.cancel_reason: Optional[str] = None

    def heartbeat(self, details: Any = None) -> None:
        """Tells the conductor this task is alive (and, optionally, how far it got: any
        JSON value). Needed when the flow sets a heartbeat_timeout for the task. Safe to
        call from async code and from a sync task's thread; it never blocks."""
        self._send_progress(self.dispatch_id, json.dumps(details) if details is not None else "")

    @property
    def cancelled(self) -> bool:
        """Whether the conductor cancelled this assignment. Async task code is interrupted
        with asyncio.CancelledError; a sync task (run in a thread) should poll this."""
        return self._cancelled.is_set()

    def _cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self._cancelled.set()

    def __repr__(self) -> str:
        return (
            f"Context(job_id={self.job_id!r}, task={self.task!r}, atom={self.atom!r}, "
            f"attempt={self.attempt}, action={self.action!r})"
        )
