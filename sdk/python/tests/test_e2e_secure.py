"""The SDK against a conductor behind TLS and an auth file (issue 12): certificates made
here with `openssl`, a real `conductor`; `baton.Client` and `baton.Worker` with a token and
the CA run a `kind: remote` task; a worker whose identity lacks `worker` is refused with
PERMISSION_DENIED naming the role; a client without a token gets UNAUTHENTICATED; with
mutual TLS a worker is known by its client certificate, and a Client takes BATON_CA,
BATON_TOKEN, BATON_CERT and BATON_KEY from the environment."""

from __future__ import annotations

import asyncio
import hashlib
import pathlib
import shutil
import subprocess

import grpc
import pytest

import baton
import harness
from conftest import run, serving

FLOW = """
name: py-secure-add
inputs:
  a: {type: integer}
flow:
  linear:
    - task: sum
      kind: remote
      requires: [a]
      with: {task: py.secure.add, b: 40}
"""


def openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl not found: install it (apt-get install openssl) to make the test certificates")
    done = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def make_pki(dir: pathlib.Path) -> dict:
    """A CA and a server certificate for 127.0.0.1 (P-256 keys), as files."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(dir / "ca.key"), "-out", str(dir / "ca.pem"), "-days", "1",
            "-subj", "/CN=py-test-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", *ec, "-keyout", str(dir / "server.key"), "-out", str(dir / "server.csr"),
            "-subj", "/CN=localhost")
    (dir / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", str(dir / "server.csr"), "-CA", str(dir / "ca.pem"), "-CAkey", str(dir / "ca.key"),
            "-CAcreateserial", "-days", "1", "-out", str(dir / "server.pem"), "-extfile", str(dir / "server.ext"))
    return {"ca": dir / "ca.pem", "cert": dir / "server.pem", "key": dir / "server.key"}


def line(name: str, roles: str, token: str) -> str:
    return f"{name} {roles} sha256:{hashlib.sha256(token.encode()).hexdigest()}\n"


def test_client_and_worker_take_a_token_and_a_ca(procs, tmp_path):
    pki = make_pki(tmp_path)
    auth = tmp_path / "auth"
    auth.write_text(line("w1", "worker", "worker-token") + line("poster", "read,post", "poster-token"))
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "add.yaml").write_text(FLOW)
    port = harness.free_port()
    endpoint = f"https://127.0.0.1:{port}"
    conductor = procs.process("py-secure", [
        str(harness.binary("conductor")), "--listen", f"127.0.0.1:{port}", "--name", "py-secure",
        "--data-dir", str(tmp_path / "board"), "--flows-dir", str(flows),
        "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), "--auth-file", str(auth),
    ])
    token_file = tmp_path / "poster-token"
    token_file.write_text("poster-token\n")
    client = baton.Client(endpoint, token_file=str(token_file), ca=str(pki["ca"]))

    def listed() -> bool:
        assert conductor.alive(), conductor.log_tail()
        try:
            client.workers()
            return True
        except grpc.RpcError:
            return False

    harness.wait_for("the TLS conductor", listed)
    assert "poster-token" not in repr(client._credentials)

    with pytest.raises(grpc.RpcError) as refused:
        baton.Client(endpoint, ca=pki["ca"].read_bytes()).post("py-secure-add", {"a": 1})
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    denied = baton.Worker(endpoint, worker_id="w-denied", token="poster-token", ca=str(pki["ca"]))
    allowed = baton.Worker(endpoint, worker_id="w1", token="worker-token", ca=str(pki["ca"]))
    for worker in (denied, allowed):
        @worker.task("py.secure.add")
        async def add(ctx, a: int, b: int) -> int:
            return a + b

    async def body() -> None:
        with pytest.raises(baton.WorkerRejected) as rejected:
            await denied.serve()
        assert "PERMISSION_DENIED" in str(rejected.value) and "`worker`" in str(rejected.value), rejected.value
        async with serving(allowed):
            job = await asyncio.to_thread(client.post, "py-secure-add", {"a": 2})
            done = await asyncio.to_thread(client.wait, job.id, timeout=60)
            assert done.succeeded, done
            assert done.results["sum"] == 42

    run(body)
    client.close()


def client_cert(dir: pathlib.Path, name: str) -> dict:
    """A client certificate for `name` (its CN and a DNS SAN), signed by make_pki's CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-new", *ec, "-keyout", str(dir / f"{name}.key"), "-out", str(dir / f"{name}.csr"),
            "-subj", f"/CN={name}")
    (dir / f"{name}.ext").write_text(
        f"subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", str(dir / f"{name}.csr"), "-CA", str(dir / "ca.pem"), "-CAkey", str(dir / "ca.key"),
            "-CAcreateserial", "-days", "1", "-out", str(dir / f"{name}.pem"), "-extfile", str(dir / f"{name}.ext"))
    return {"cert": dir / f"{name}.pem", "key": dir / f"{name}.key"}


def test_a_client_certificate_and_the_baton_environment_variables(procs, tmp_path, monkeypatch):
    """Mutual TLS: a worker identified by its client certificate (`cert=`, `key=`) runs the
    task; a Client given nothing but the endpoint takes BATON_CA and BATON_TOKEN from the
    environment, as `baton` does, and one given BATON_CERT/BATON_KEY of an identity the
    auth file does not know is refused."""
    pki = make_pki(tmp_path)
    worker_id = client_cert(tmp_path, "py-cert-worker")
    stranger = client_cert(tmp_path, "py-stranger")
    auth = tmp_path / "auth"
    auth.write_text("w-cert worker cert:py-cert-worker\n" + line("poster", "read,post", "poster-token"))
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "add.yaml").write_text(FLOW)
    port = harness.free_port()
    endpoint = f"https://127.0.0.1:{port}"
    conductor = procs.process("py-mtls", [
        str(harness.binary("conductor")), "--listen", f"127.0.0.1:{port}", "--name", "py-mtls",
        "--data-dir", str(tmp_path / "board"), "--flows-dir", str(flows),
        "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]), "--tls-client-ca", str(pki["ca"]),
        "--auth-file", str(auth),
    ])
    # Made before the variables are set: a BATON_TOKEN would be sent along and win over the certificate.
    worker = baton.Worker(endpoint, worker_id="w-cert", ca=str(pki["ca"]),
                          cert=str(worker_id["cert"]), key=str(worker_id["key"]))
    monkeypatch.setenv("BATON_CA", str(pki["ca"]))
    monkeypatch.setenv("BATON_TOKEN", "poster-token")
    client = baton.Client(endpoint)

    def listed() -> bool:
        assert conductor.alive(), conductor.log_tail()
        try:
            client.workers()
            return True
        except grpc.RpcError:
            return False

    harness.wait_for("the mutual-TLS conductor", listed)
    with monkeypatch.context() as env:
        env.delenv("BATON_TOKEN")
        env.setenv("BATON_CERT", str(stranger["cert"]))
        env.setenv("BATON_KEY", str(stranger["key"]))
        with pytest.raises(grpc.RpcError) as refused:
            baton.Client(endpoint).post("py-secure-add", {"a": 1})
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    @worker.task("py.secure.add")
    async def add(ctx, a: int, b: int) -> int:
        return a + b

    async def body() -> None:
        async with serving(worker):
            job = await asyncio.to_thread(client.post, "py-secure-add", {"a": 2})
            done = await asyncio.to_thread(client.wait, job.id, timeout=60)
            assert done.succeeded, done
            assert done.results["sum"] == 42

    run(body)
    client.close()
