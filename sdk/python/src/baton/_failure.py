"""Task failures both ways: a Python exception into the protocol's TaskFailure, and a
TaskFailure (what a revert handler is given) into a plain `Failure` value."""

from __future__ import annotations

import dataclasses
import json
import traceback
from typing import Any, List, Optional

from baton.v1 import worker_pb2

# A cause chain longer than this is cut: a cycle or a pathological chain must not
# make a Result unbounded.
_MAX_CAUSES = 16


class TaskError(Exception):
    """Raise it from task code to fail the task with a chosen kind and JSON details.

    Any other exception fails the task too, with its class name as the kind.
    """

    def __init__(self, message: str, *, kind: str = "TaskError", details: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


@dataclasses.dataclass(frozen=True)
class Failure:
    """How a task failed, as a revert handler receives it (`failure=`)."""

    kind: str
    message: str
    details: Any = None
    causes: List["Failure"] = dataclasses.field(default_factory=list)

    @classmethod
    def from_proto(cls, failure: worker_pb2.TaskFailure) -> "Failure":
        return cls(
            kind=failure.kind or "TaskError",
            message=failure.message,
            details=json.loads(failure.details_json) if failure.details_json else None,
            causes=[cls.from_proto(cause) for cause in failure.causes],
        )

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def failure_of(error: BaseException) -> worker_pb2.TaskFailure:
    """The protocol failure for an exception: kind, message, the traceback as details, and
    its causes (`__cause__`, else `__context__`), nearest first."""
    top = _one(error, with_traceback=True)
    seen = {id(error)}
    cause = _next_cause(error)
    while cause is not None and id(cause) not in seen and len(top.causes) < _MAX_CAUSES:
        seen.add(id(cause))
        top.causes.append(_one(cause, with_traceback=False))
        cause = _next_cause(cause)
    return top


def failure(kind: str, message: str) -> worker_pb2.TaskFailure:
    """A failure made by the SDK itself (unknown task, result too large, cancelled)."""
    return worker_pb2.TaskFailure(kind=kind, message=message)


def _one(error: BaseException, *, with_traceback: bool) -> worker_pb2.TaskFailure:
    if isinstance(error, TaskError):
        kind, details = error.kind, error.details
    else:
        kind, details = type(error).__name__, None
    if details is None and with_traceback:
        details = {"traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))}
    try:
        details_json = json.dumps(details) if details is not None else ""
    except (TypeError, ValueError):
        details_json = json.dumps({"repr": repr(details)})
    return worker_pb2.TaskFailure(kind=kind, message=str(error), details_json=details_json)


def _next_cause(error: BaseException) -> Optional[BaseException]:
    if error.__cause__ is not None:
        return error.__cause__
    if error.__suppress_context__:
        return None
    return error.__context__
