"""A Baton worker in Python: the tasks of the `checkout` flow (flows/checkout.yaml).

    pip install ./sdk/python
    python examples/python-worker/worker.py 127.0.0.1:50051 [more conductor endpoints...]

Stops gracefully on SIGTERM / Ctrl-C: takes no new tasks, finishes the running ones.
"""

import asyncio
import sys

import baton

worker = baton.Worker(sys.argv[1:] or ["127.0.0.1:50051"], slots=8, labels={"example": "checkout"})

# A stand-in for a payment provider: charges by idempotency key, so an attempt re-sent
# after a lost worker never charges twice.
CHARGES: dict = {}


@worker.task("inventory.reserve", timeout="30s")
async def reserve(ctx, sku: str, quantity: int) -> dict:
    if quantity > 10:
        raise baton.TaskError(f"only 10 of {sku} left", kind="OutOfStock")
    return {"reservation": f"r-{ctx.job_id[:8]}", "sku": sku, "quantity": quantity}


@reserve.revert
async def release(ctx, sku: str, quantity: int, result, failure) -> None:
    print(f"released {result} ({ctx.job_id})", flush=True)


@worker.task("billing.charge", timeout="5m")
async def charge(ctx, customer: str, amount: int, reservation: dict) -> dict:
    ctx.heartbeat({"step": "authorising"})
    await asyncio.sleep(0.05)  # the provider's round trip
    if amount <= 0:
        raise baton.TaskError(f"cannot charge {amount}", kind="BadAmount")
    charge_id = CHARGES.setdefault(ctx.idempotency_key, f"ch-{len(CHARGES) + 1}")
    return {"charge_id": charge_id, "customer": customer, "amount": amount, "for": reservation["reservation"]}


@charge.revert
async def refund(ctx, customer: str, amount: int, reservation: dict, result, failure) -> None:
    if result is not None:
        print(f"refunded {result['charge_id']} to {customer}", flush=True)


@worker.task("mail.receipt")
def receipt(ctx, customer: str, payment: dict) -> str:
    # A plain function runs in a thread: fine for blocking client libraries.
    return f"receipt for {payment['charge_id']} sent to {customer}"


if __name__ == "__main__":
    worker.run()
