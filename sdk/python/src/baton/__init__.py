"""Baton for Python: remote workers that run flow tasks, and a client for jobs.

    import baton

    worker = baton.Worker(["127.0.0.1:50051"], slots=8)

    @worker.task("billing.charge", timeout="5m")
    async def charge(ctx, customer: str, amount: int) -> dict:
        return {"charged": amount}

    @charge.revert
    async def refund(ctx, customer: str, amount: int, result, failure):
        ...

    @worker.task("approvals.request")
    def request(ctx, ticket: str):
        return baton.Park(timeout="72h")     # finished later, by a completion

    @request.parked
    def hand_out(ctx, ticket: str, callback):
        chat.post(ticket, callback.token)    # `baton complete TOKEN --result ...`

    worker.run()
"""

__version__ = "0.1.0"

from baton._client import Client, Job, JobTimeout, TaskState  # noqa: E402
from baton._context import Context  # noqa: E402
from baton._failure import Failure, TaskError  # noqa: E402
from baton._park import Callback, Park  # noqa: E402
from baton._session import WorkerRejected  # noqa: E402
from baton._task import TaskDef  # noqa: E402
from baton._worker import Worker  # noqa: E402

__all__ = [
    "Callback",
    "Client",
    "Context",
    "Failure",
    "Job",
    "JobTimeout",
    "Park",
    "TaskDef",
    "TaskError",
    "TaskState",
    "Worker",
    "WorkerRejected",
    "__version__",
]
