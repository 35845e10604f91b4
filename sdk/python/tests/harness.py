"""Real processes for the end-to-end tests: an etcd on free loopback ports, `conductor`
binaries (built by `cargo build --workspace --bins`), worker processes. Everything is
started under `setpriv --pdeathsig KILL` where available and killed with SIGKILL at the
end, so no test leaves a process behind.

The binaries are looked up in $BATON_BIN_DIR, else $CARGO_TARGET_DIR/debug, else the
repository's target/debug. A missing binary or etcd fails the test with what to install;
nothing is skipped."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import grpc
import pytest

import baton
from baton.v1 import baton_pb2, baton_pb2_grpc

REPO = pathlib.Path(__file__).resolve().parents[3]
# Waits end as soon as the awaited state is seen; these only bound them.
START_TIMEOUT_S = 30.0
LOG_TAIL_BYTES = 8 * 1024


def bin_dir() -> pathlib.Path:
    if os.environ.get("BATON_BIN_DIR"):
        return pathlib.Path(os.environ["BATON_BIN_DIR"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return pathlib.Path(os.environ["CARGO_TARGET_DIR"]) / "debug"
    return REPO / "target" / "debug"


def binary(name: str) -> pathlib.Path:
    path = bin_dir() / name
    if not path.is_file():
        pytest.fail(f"{path} not found: build the binaries first: cargo build --workspace --bins (or set BATON_BIN_DIR)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _guarded(command: Sequence[str]) -> List[str]:
    """The command, killed with its parent (the test process) if that dies first."""
    if os.path.exists("/usr/bin/setpriv"):
        return ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", *command]
    return list(command)


class Process:
    """A child process with its log in a temp file; SIGKILLed by `kill()`."""

    def __init__(self, name: str, command: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.log_dir = tempfile.TemporaryDirectory(prefix=f"baton-py-{name}-")
        self.log_path = pathlib.Path(self.log_dir.name) / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                _guarded(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.popen.pid, signum)

    def kill(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGCONT)  # a stopped process dies too
            self.popen.kill()
        self.popen.wait(timeout=30)

    def log(self) -> str:
        """Everything the process has printed so far."""
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError as error:
            return f"(no log: {error})"

    def log_tail(self) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as error:
            return f"(no log: {error})"
        return data[-LOG_TAIL_BYTES:].decode("utf-8", "replace")


class Etcd(Process):
    def __init__(self) -> None:
        etcd = shutil.which("etcd")
        if etcd is None:
            pytest.fail("etcd not found: install it (Debian: apt-get install etcd-server etcd-client); tools/test does")
        self.data = tempfile.TemporaryDirectory(prefix="baton-py-etcd-")
        self.client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        super().__init__(
            "etcd",
            [
                etcd, "--name", "py", "--data-dir", self.data.name,
                "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"py={peer_url}", "--log-level=error",
            ],
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        host, port = self.client_url.removeprefix("http://").split(":")
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"etcd did not start:\n{self.log_tail()}")
                time.sleep(0.05)


class Conductor(Process):
    """A `conductor` process on `port` (a free one if None). `etcd`: the board, under
    `prefix`; None for the embedded board in a temp dir."""

    def __init__(
        self,
        name: str,
        flows_dir: pathlib.Path,
        *,
        etcd: Optional[Etcd] = None,
        prefix: str = "/baton-py/",
        extra: Sequence[str] = (),
        program: str = "conductor",
        port: Optional[int] = None,
    ) -> None:
        self.data = tempfile.TemporaryDirectory(prefix=f"baton-py-board-{name}-")
        self.port = port or free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        board = ["--etcd", etcd.client_url, "--prefix", prefix] if etcd else ["--data-dir", self.data.name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
        env.setdefault("RUST_LOG", "info")
        super().__init__(
            name,
            [
                str(binary(program)), "--listen", self.endpoint, "--name", name, "--lease-ttl", "3s",
                "--flows-dir", str(flows_dir), *board, *extra,
            ],
            env=env,
        )
        self._wait_registered()

    def _wait_registered(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with grpc.insecure_channel(self.endpoint) as channel:
            stub = baton_pb2_grpc.BatonStub(channel)
            while True:
                try:
                    listed = stub.ListConductors(baton_pb2.ListConductorsRequest(), timeout=2)
                    if any(c.name == self.name for c in listed.conductors):
                        return
                except grpc.RpcError:
                    pass
                if not self.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"conductor {self.name} did not start:\n{self.log_tail()}")
                time.sleep(0.1)


class WorkerProcess(Process):
    """A Python worker script run with the test's interpreter."""

    def __init__(self, name: str, script: pathlib.Path, *args: str, env: Optional[Dict[str, str]] = None) -> None:
        env = {**os.environ, **(env or {})}
        env["PYTHONUNBUFFERED"] = "1"
        super().__init__(name, [sys.executable, str(script), *args], env=env)


def wait_for(what: str, check, timeout: float = START_TIMEOUT_S, interval: float = 0.05):
    """Polls `check()` until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def client(*conductors: Conductor) -> baton.Client:
    return baton.Client([c.endpoint for c in conductors])
