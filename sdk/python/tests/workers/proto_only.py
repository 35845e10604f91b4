"""A worker written from proto/baton/v1/worker.proto alone: no Baton SDK, only the
stubs grpcio-tools generates from that file (the test generates them into a temp dir
and passes it first). It follows the file's "A worker's life, step by step".

    proto_only.py STUBS_DIR ENDPOINT

Runs one task, "proto.shout": returns {"shout": text.upper() + "!", "key": the
idempotency key}. Exits after SIGTERM (Slots 0, then half-close) or when the stream ends."""

import json
import os
import queue
import signal
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import worker_pb2  # noqa: E402  (generated from worker.proto)
import worker_pb2_grpc  # noqa: E402

ENDPOINT = sys.argv[2]
outbox: "queue.Queue" = queue.Queue()
CLOSE = object()
stopping = threading.Event()


def requests():
    """The worker's side of the stream: whatever is put in the outbox, until CLOSE."""
    while True:
        message = outbox.get()
        if message is CLOSE:
            return  # ends the request stream: the half-close
        yield message


def run_task(assign):
    inputs = json.loads(assign.inputs_json or "{}")
    result = worker_pb2.Result(dispatch_id=assign.dispatch_id, attempt=assign.attempt)
    if assign.task != "proto.shout":
        result.failure.kind = "UnknownTask"
        result.failure.message = f"no task {assign.task}"
    else:
        value = {"shout": inputs["text"].upper() + "!", "key": assign.idempotency_key}
        result.success.result_json = json.dumps(value)
    outbox.put(worker_pb2.WorkerMessage(result=result))


def main():
    # Step 1: Hello first.
    outbox.put(
        worker_pb2.WorkerMessage(
            hello=worker_pb2.Hello(
                worker_id=f"proto-only-{os.getpid()}",
                tasks=[worker_pb2.TaskOffer(name="proto.shout", can_revert=False)],
                slots=2,
                sdk="proto-only/test",
            )
        )
    )
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with grpc.insecure_channel(ENDPOINT) as channel:
        responses = worker_pb2_grpc.WorkersStub(channel).Attach(requests())
        welcome = next(responses)
        # Step 2: the Welcome says how often to beat.
        assert welcome.WhichOneof("msg") == "welcome", welcome
        interval = (welcome.welcome.heartbeat_interval_ms or 1000) / 1000
        print(f"welcomed by {welcome.welcome.conductor}", flush=True)

        def beat():
            # Step 7: heartbeats; step 9: on SIGTERM, Slots 0 then half-close.
            while not stopping.is_set():
                outbox.put(worker_pb2.WorkerMessage(heartbeat=worker_pb2.Heartbeat(free_slots=2)))
                stopping.wait(interval)
            outbox.put(worker_pb2.WorkerMessage(slots=worker_pb2.Slots(slots=0)))
            time.sleep(0.2)
            outbox.put(CLOSE)

        threading.Thread(target=beat, daemon=True).start()
        # Steps 3-4: every Assign has a free slot; answer each with one Result.
        for message in responses:
            kind = message.WhichOneof("msg")
            if kind == "assign":
                threading.Thread(target=run_task, args=(message.assign,), daemon=True).start()
            elif kind == "error":
                print(f"protocol error: {message.error}", flush=True)
    print("stream ended", flush=True)


if __name__ == "__main__":
    main()
