"""`Client`: post, get, watch, wait for and cancel jobs over `baton.v1.Baton`, failing
over through a list of conductor endpoints; suspend, resume, retry and rerun them; drain
a conductor; list connected workers."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union

import grpc

from baton._channel import Credentials, Pem, open_sync_channel
from baton._duration import to_millis
from baton._failure import Failure
from baton.v1 import baton_pb2, baton_pb2_grpc, worker_pb2, worker_pb2_grpc

T = TypeVar("T")

# Status codes that say "this conductor cannot answer now", not "the request is wrong":
# the client tries the next endpoint on them.
_RETRY_ELSEWHERE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclasses.dataclass(frozen=True)
class TaskState:
    """One task (atom) of a job, from its logbook."""

    name: str
    kind: str
    state: str
    attempts: int
    executions: int
    failure: Optional[Failure]
    # What execute returned (parsed JSON), once it succeeded; None before (see has_result).
    result: Any
    has_result: bool


@dataclasses.dataclass(frozen=True)
class Job:
    """A job as the board has it. `state`: UNCLAIMED, CLAIMED, PARKED, SUSPENDED, COMPLETE
    or TRASHED; `outcome` once COMPLETE: SUCCESS, REVERTED, FAILURE or CANCELLED (a job
    past its `deadline_ms` ends CANCELLED with a DEADLINE_EXCEEDED failure)."""

    id: str
    flow: str
    store: Dict[str, Any]
    priority: int
    idempotency_key: Optional[str]
    state: str
    outcome: Optional[str]
    owner: Optional[str]
    claims: int
    failure: Optional[Failure]
    trash_reason: Optional[str]
    cancel_requested: bool
    created_at_ms: int
    finished_at_ms: Optional[int]
    tasks: Dict[str, TaskState]
    deadline_ms: Optional[int] = None
    # The job this one reruns (Client.rerun).
    rerun_of: Optional[str] = None
    suspend_requested: bool = False

    @property
    def done(self) -> bool:
        return self.state in ("COMPLETE", "TRASHED")

    @property
    def succeeded(self) -> bool:
        return self.state == "COMPLETE" and self.outcome == "SUCCESS"

    @property
    def results(self) -> Dict[str, Any]:
        """Each finished task's result by task name."""
        return {name: task.result for name, task in self.tasks.items() if task.has_result}

    @classmethod
    def from_proto(cls, job: baton_pb2.Job) -> "Job":
        outcome = baton_pb2.Outcome.Name(job.outcome).removeprefix("OUTCOME_")
        return cls(
            id=job.id,
            flow=job.flow,
            store=json.loads(job.store_json) if job.store_json else {},
            priority=job.priority,
            idempotency_key=job.idempotency_key if job.HasField("idempotency_key") else None,
            state=baton_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_"),
            outcome=None if outcome == "UNSPECIFIED" else outcome,
            owner=job.owner if job.HasField("owner") else None,
            claims=job.claims,
            failure=_failure(job.failure) if job.HasField("failure") else None,
            trash_reason=job.trash_reason if job.HasField("trash_reason") else None,
            cancel_requested=job.cancel_requested,
            created_at_ms=job.created_at_ms,
            finished_at_ms=job.finished_at_ms if job.HasField("finished_at_ms") else None,
            tasks={task.name: _task(task) for task in job.tasks},
            deadline_ms=job.deadline_ms if job.HasField("deadline_ms") else None,
            rerun_of=job.rerun_of if job.HasField("rerun_of") else None,
            suspend_requested=job.suspend_requested,
        )


class JobTimeout(TimeoutError):
    """`Client.wait` gave up before the job finished."""


class Client:
    """A client of Baton's job API. `endpoints`: conductor addresses ("host:port" or
    "http://host:port"); a call that finds one unavailable tries the next. `timeout`:
    the deadline of each unary call. A secured conductor ("https://host:port"): `token`
    (or `token_file`, its first line) is sent as a bearer token, `ca` is the CA that signed
    the conductor's certificate, `cert` and `key` a client certificate (each a path or PEM
    bytes) -- as `baton --token/--token-file/--ca/--cert/--key`."""

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        timeout: Union[str, float] = 10.0,
        token: Optional[str] = None,
        token_file: Optional[str] = None,
        ca: Optional[Pem] = None,
        cert: Optional[Pem] = None,
        key: Optional[Pem] = None,
    ) -> None:
        self._credentials = Credentials.resolve(token, token_file, ca, cert, key)
        self.endpoints: List[str] = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not self.endpoints:
            raise ValueError("a Client needs at least one conductor endpoint")
        self.timeout = to_millis(timeout) / 1000
        self._channels: Dict[str, grpc.Channel] = {}
        self._preferred = 0

    def post(
        self,
        flow: str,
        store: Optional[Mapping[str, Any]] = None,
        *,
        priority: int = 0,
        idempotency_key: Optional[str] = None,
        deadline: Union[str, float, None] = None,
    ) -> Job:
        """Posts a job of `flow` with `store` (its inputs); returns it as posted. `deadline`
        ("2h", or seconds): cancel and revert it if unfinished that long after the post
        (default: the flow file's `deadline:`)."""
        request = baton_pb2.PostJobRequest(flow=flow, store_json=json.dumps(dict(store or {})), priority=priority)
        if idempotency_key is not None:
            request.idempotency_key = idempotency_key
        if deadline is not None:
            request.deadline_in_ms = int(to_millis(deadline))
        return Job.from_proto(self._unary(lambda stub: stub.PostJob(request, timeout=self.timeout)))

    def get(self, job_id: str) -> Job:
        """The job with its tasks. grpc.RpcError NOT_FOUND for an unknown id."""
        return Job.from_proto(self._unary(lambda stub: stub.GetJob(baton_pb2.GetJobRequest(id=job_id), timeout=self.timeout)))

    def cancel(self, job_id: str) -> Job:
        """Requests the job's cancellation (running remote tasks are cancelled too)."""
        return Job.from_proto(
            self._unary(lambda stub: stub.CancelJob(baton_pb2.CancelJobRequest(id=job_id), timeout=self.timeout))
        )

    def suspend(self, job_id: str) -> Job:
        """Suspends the job: a running one starts no new task, lets running ones finish
        and is released SUSPENDED. grpc.RpcError FAILED_PRECONDITION naming the state
        where that makes no sense (finished, already suspended)."""
        return self._job_call(lambda stub: stub.SuspendJob(baton_pb2.SuspendJobRequest(id=job_id), timeout=self.timeout))

    def resume(self, job_id: str) -> Job:
        """Makes a SUSPENDED job claimable again; it continues where it stopped."""
        return self._job_call(lambda stub: stub.ResumeJob(baton_pb2.ResumeJobRequest(id=job_id), timeout=self.timeout))

    def retry(self, job_id: str) -> Job:
        """Re-queues a job that ended FAILURE (to finish its revert) or a TRASHED one
        (claim count reset, resuming where it stopped)."""
        return self._job_call(lambda stub: stub.RetryJob(baton_pb2.RetryJobRequest(id=job_id), timeout=self.timeout))

    def rerun(
        self,
        job_id: str,
        store: Optional[Mapping[str, Any]] = None,
        *,
        deadline: Union[str, float, None] = None,
        idempotency_key: Optional[str] = None,
    ) -> Job:
        """Posts a new job of the same flow version and store as `job_id`, `store`'s values
        replacing; the new job's `rerun_of` names the old one."""
        request = baton_pb2.RerunJobRequest(id=job_id, store_json=json.dumps(dict(store or {})))
        if deadline is not None:
            request.deadline_in_ms = int(to_millis(deadline))
        if idempotency_key is not None:
            request.idempotency_key = idempotency_key
        return self._job_call(lambda stub: stub.RerunJob(request, timeout=self.timeout))

    def _job_call(self, call: Callable[[Any], baton_pb2.Job]) -> Job:
        return Job.from_proto(self._unary(call))

    def watch(self, job_id: str, *, timeout: Union[str, float, None] = None) -> Iterator[Job]:
        """The job now and after every change, until it is COMPLETE or TRASHED (the last
        one yielded). `timeout` bounds the whole watch (grpc.RpcError DEADLINE_EXCEEDED)."""
        deadline = None if timeout is None else to_millis(timeout) / 1000
        stream = self._unary(
            lambda stub: _first_then_rest(stub.WatchJob(baton_pb2.WatchJobRequest(id=job_id), timeout=deadline))
        )
        for job in stream:
            yield Job.from_proto(job)

    def wait(self, job_id: str, *, timeout: Union[str, float, None] = None) -> Job:
        """Blocks until the job is COMPLETE or TRASHED and returns it; JobTimeout after
        `timeout` (None: no limit). A watch broken by a conductor's end is resumed on
        the next endpoint."""
        limit = None if timeout is None else time.monotonic() + to_millis(timeout) / 1000
        while True:
            remaining = None if limit is None else max(0.0, limit - time.monotonic())
            try:
                last = None
                for job in self.watch(job_id, timeout=remaining):
                    last = job
                if last is not None and last.done:
                    return last
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and limit is not None and time.monotonic() >= limit:
                    raise JobTimeout(f"job {job_id} did not finish within {timeout}") from None
                if error.code() not in _RETRY_ELSEWHERE:
                    raise
                self._preferred += 1
            if limit is not None and time.monotonic() >= limit:
                raise JobTimeout(f"job {job_id} did not finish within {timeout}")

    def drain(self, conductor: str, draining: bool = True) -> baton_pb2.Conductor:
        """Tells conductor `conductor` to stop (or, with False, resume) claiming new jobs;
        it finishes what it holds and keeps serving its workers."""
        request = baton_pb2.DrainRequest(name=conductor, draining=draining)
        return self._unary(lambda stub: stub.Drain(request, timeout=self.timeout))

    def workers(self) -> List[worker_pb2.WorkerInfo]:
        """The workers connected to the fleet (as `baton workers` lists them)."""
        response = self._unary(
            lambda stub: stub.ListWorkers(worker_pb2.ListWorkersRequest(), timeout=self.timeout), workers=True
        )
        return list(response.workers)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, call: Callable[[Any], T], *, workers: bool = False) -> T:
        """Runs `call` on the preferred endpoint, then on each other one while they are
        unavailable; the last error if none answers."""
        last: Optional[grpc.RpcError] = None
        for offset in range(len(self.endpoints)):
            index = (self._preferred + offset) % len(self.endpoints)
            channel = self._channel(self.endpoints[index])
            stub = worker_pb2_grpc.WorkersStub(channel) if workers else baton_pb2_grpc.BatonStub(channel)
            try:
                value = call(stub)
            except grpc.RpcError as error:
                if error.code() not in _RETRY_ELSEWHERE:
                    raise
                last = error
                continue
            self._preferred = index
            return value
        assert last is not None
        raise last

    def _channel(self, endpoint: str) -> grpc.Channel:
        if endpoint not in self._channels:
            self._channels[endpoint] = open_sync_channel(endpoint, self._credentials)
        return self._channels[endpoint]


def _first_then_rest(stream: Iterator[T]) -> Iterator[T]:
    """Reads the first message now (so an unavailable endpoint fails inside the failover
    loop), then hands back the rest of the stream."""
    first = next(stream)

    def rest() -> Iterator[T]:
        yield first
        yield from stream

    return rest()


def _failure(failure: baton_pb2.Failure) -> Failure:
    causes: List[Failure] = []
    cause = failure.cause if failure.HasField("cause") else None
    while cause is not None:
        causes.append(_one(cause))
        cause = cause.cause if cause.HasField("cause") else None
    return dataclasses.replace(_one(failure), causes=causes)


def _one(failure: baton_pb2.Failure) -> Failure:
    details = json.loads(failure.details_json) if failure.details_json else None
    return Failure(kind=failure.kind, message=failure.message, details=details)


def _task(task: baton_pb2.Task) -> TaskState:
    has_result = task.HasField("result_json")
    return TaskState(
        name=task.name,
        kind=task.kind,
        state=task.state,
        attempts=task.attempts,
        executions=task.executions,
        failure=_failure(task.failure) if task.HasField("failure") else None,
        result=json.loads(task.result_json) if has_result and task.result_json else None,
        has_result=has_result,
    )
