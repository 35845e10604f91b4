"""A registered worker task: its execute function, optional revert, default timeout, and
how either is called for one assignment (async in the loop, sync in a thread)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
from typing import Any, Callable, Dict, Optional

from baton._context import Context


class TaskDef:
    """What `@worker.task(name)` returns: the function itself (still callable as before),
    plus `.revert` and `.parked`, decorators that register the task's revert handler and
    its parked handler."""

    def __init__(self, name: str, fn: Callable[..., Any], default_timeout_ms: int) -> None:
        self.name = name
        self.fn = fn
        self.default_timeout_ms = default_timeout_ms
        self.revert_fn: Optional[Callable[..., Any]] = None
        self.parked_fn: Optional[Callable[..., Any]] = None
        functools.update_wrapper(self, fn)

    def revert(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Registers `fn(ctx, **inputs, result, failure)` as this task's revert handler:
        `result` is what execute returned (None if it failed or never finished),
        `failure` a `baton.Failure` (None if it succeeded)."""
        if self.revert_fn is not None:
            raise ValueError(f"task {self.name!r} already has a revert handler")
        self.revert_fn = fn
        return fn

    def parked(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Registers `fn(ctx, **inputs, callback)` as this task's parked handler: when
        execute returns `baton.Park(timeout)`, the conductor records the park and then
        sends the handler a `baton.Callback` (token, webhook URL, deadline) to hand to
        whatever will complete the task. It may run on another worker offering the task,
        and again with a new token if a conductor died before handing the first one out;
        raising fails the parked attempt."""
        if self.parked_fn is not None:
            raise ValueError(f"task {self.name!r} already has a parked handler")
        self.parked_fn = fn
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"TaskDef({self.name!r}, revert={self.revert_fn is not None}, parked={self.parked_fn is not None})"


async def call_task(
    fn: Callable[..., Any],
    ctx: Context,
    kwargs: Dict[str, Any],
    executor: concurrent.futures.Executor,
) -> Any:
    """Calls a task function: a coroutine function in the running loop (a Cancel raises
    asyncio.CancelledError in it), a plain function in a thread of `executor` (a Cancel
    sets `ctx.cancelled`; the call is awaited to its end, since a thread cannot be
    interrupted and its slot is taken until it returns)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(ctx, **kwargs)
    loop = asyncio.get_running_loop()
    copied = contextvars.copy_context()
    future = loop.run_in_executor(executor, functools.partial(copied.run, fn, ctx, **kwargs))
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
            ctx._cancel(ctx.cancel_reason or "cancelled")
    if cancelled:
        raise asyncio.CancelledError()
    value = future.result()
    if inspect.isawaitable(value):
        return await value
    return value
