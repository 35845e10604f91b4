"""Parking a task: `Park`, what a task returns to hand its work to something outside that
finishes it later, and `Callback`, what the task's parked handler is given once the park
is recorded (the token that completes it, the webhook URL, the deadline)."""

from __future__ import annotations

import datetime
from typing import Union

from baton._duration import to_millis


class Park:
    """Returned by a task's execute function: the task is not done, something outside
    will complete it (`baton complete TOKEN`, `CompleteTask`, or the conductor's webhook)
    within `timeout` ("72h", seconds, a timedelta; more than zero), else it fails with
    kind "Timeout" and the flow's retries and reverts apply. The task needs a parked
    handler (`@task.parked`): it runs once the park is recorded, with the token."""

    def __init__(self, timeout: Union[str, float, datetime.timedelta]) -> None:
        self.timeout_ms = to_millis(timeout)
        if self.timeout_ms <= 0:
            raise ValueError(f"a park needs a timeout of more than zero, not {timeout!r}")

    def __repr__(self) -> str:
        return f"Park(timeout_ms={self.timeout_ms})"


class Callback:
    """What a parked handler is given: `token` completes the parked attempt (a credential:
    hand it to whoever completes the task, never log it), `url` the conductor's webhook
    for it ("" when the conductor advertises no HTTP address), `deadline_ms` when the park
    times out (ms since the epoch)."""

    def __init__(self, token: str, url: str, deadline_ms: int) -> None:
        self.token = token
        self.url = url
        self.deadline_ms = deadline_ms

    def __repr__(self) -> str:
        # The token is the credential: a repr that lands in a log must not show it.
        return f"Callback(token='<redacted>', deadline_ms={self.deadline_ms})"
