"""One assignment run to its one Result: inputs decoded into keyword arguments, the
execute, revert or parked handler called, the outcome encoded (success JSON, a failure,
or parked when execute returned `baton.Park`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from typing import Any, Dict, Optional

from baton._context import Context
from baton._failure import Failure, TaskError, failure, failure_of
from baton._park import Callback, Park
from baton._task import TaskDef, call_task
from baton.v1 import worker_pb2

log = logging.getLogger("baton.worker")

# What is kept of a failure that is itself over the conductor's size limit.
_MAX_FAILURE_MESSAGE = 4096


async def run_assignment(
    assign: worker_pb2.Assign,
    taskdef: Optional[TaskDef],
    ctx: Context,
    executor: concurrent.futures.Executor,
    max_result_bytes: int,
) -> worker_pb2.Result:
    """Runs the assignment and returns its Result (never raises, even when cancelled:
    a cancelled assignment answers a failure of kind "Cancelled")."""
    result = worker_pb2.Result(dispatch_id=assign.dispatch_id, attempt=assign.attempt)
    try:
        value = await _call(assign, taskdef, ctx, executor)
        if isinstance(value, Park):
            _check_park(assign, taskdef)
            result.parked.timeout_ms = value.timeout_ms
            return result
        encoded = _encode(value)
    except asyncio.CancelledError:
        result.failure.CopyFrom(failure("Cancelled", ctx.cancel_reason or "cancelled"))
        return result
    except Exception as error:  # task code may raise anything: it becomes the task's failure
        result.failure.CopyFrom(_bounded(failure_of(error), max_result_bytes))
        return result
    if max_result_bytes and len(encoded.encode("utf-8")) > max_result_bytes:
        result.failure.CopyFrom(
            failure(
                "ResultTooLarge",
                f"task {assign.task!r} returned {len(encoded.encode('utf-8'))} bytes of JSON; "
                f"the conductor accepts at most {max_result_bytes}",
            )
        )
        return result
    result.success.result_json = encoded
    return result


async def _call(
    assign: worker_pb2.Assign,
    taskdef: Optional[TaskDef],
    ctx: Context,
    executor: concurrent.futures.Executor,
) -> Any:
    if taskdef is None:
        raise TaskError(f"this worker does not run task {assign.task!r}", kind="UnknownTask")
    inputs = _inputs(assign)
    if assign.action == worker_pb2.ACTION_REVERT:
        if taskdef.revert_fn is None:
            raise TaskError(f"task {assign.task!r} has no revert handler on this worker", kind="UnknownTask")
        inputs["result"] = json.loads(assign.result_json) if assign.result_json else None
        inputs["failure"] = Failure.from_proto(assign.failure) if assign.HasField("failure") else None
        return await call_task(taskdef.revert_fn, ctx, inputs, executor)
    if assign.action == worker_pb2.ACTION_PARKED:
        if taskdef.parked_fn is None:
            raise TaskError(f"task {assign.task!r} has no parked handler on this worker", kind="NoParkedHandler")
        cb = assign.callback
        inputs["callback"] = Callback(cb.token, cb.url, cb.deadline_ms)
        await call_task(taskdef.parked_fn, ctx, inputs, executor)
        return None
    if assign.action != worker_pb2.ACTION_EXECUTE:
        raise TaskError(f"unknown action {assign.action} for task {assign.task!r}", kind="BadAssign")
    return await call_task(taskdef.fn, ctx, inputs, executor)


def _check_park(assign: worker_pb2.Assign, taskdef: Optional[TaskDef]) -> None:
    """Only an execute parks, and only a task with a parked handler: without one the
    token would reach nobody, so the attempt fails here instead of waiting for its deadline."""
    if assign.action != worker_pb2.ACTION_EXECUTE:
        raise TaskError(f"only an execute can park; the {assign.task!r} handler returned baton.Park", kind="BadPark")
    if taskdef is None or taskdef.parked_fn is None:
        raise TaskError(
            f"task {assign.task!r} returned baton.Park but has no parked handler (@task.parked) to hand out its token",
            kind="NoParkedHandler",
        )


def _inputs(assign: worker_pb2.Assign) -> Dict[str, Any]:
    try:
        inputs = json.loads(assign.inputs_json) if assign.inputs_json else {}
    except ValueError as error:
        raise TaskError(f"inputs of task {assign.task!r} are not JSON: {error}", kind="BadInputs") from None
    if not isinstance(inputs, dict):
        raise TaskError(f"inputs of task {assign.task!r} are not a JSON object", kind="BadInputs")
    return inputs


def _encode(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TaskError(f"the task's return value is not JSON: {error}", kind="ResultNotJSON") from None


def _bounded(task_failure: worker_pb2.TaskFailure, max_bytes: int) -> worker_pb2.TaskFailure:
    """A failure the conductor will accept: details and causes dropped, the message cut,
    when the whole would pass its size limit."""
    if not max_bytes or task_failure.ByteSize() <= max_bytes:
        return task_failure
    limit = max(0, min(_MAX_FAILURE_MESSAGE, max_bytes // 2))
    return worker_pb2.TaskFailure(kind=task_failure.kind, message=task_failure.message[:limit])
