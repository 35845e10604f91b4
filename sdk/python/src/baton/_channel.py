"""gRPC channels from the endpoint spellings Baton uses: "host:port", "http://host:port"
(plaintext, as the Rust tools write it) or "https://host:port" (TLS), and the credentials
a secured conductor asks for: a bearer token (sent as `authorization: Bearer TOKEN`), the
CA that signed its certificate, a client certificate and key (mutual TLS) -- the same as
`baton --token/--token-file/--ca/--cert/--key`, and, like `baton`, each read from its
environment variable when not given: BATON_TOKEN, BATON_TOKEN_FILE, BATON_CA,
BATON_CERT and BATON_KEY."""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import grpc
import grpc.aio

# Results and job snapshots can be large; the conductor enforces its own limits.
_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]

#: A PEM file's path, or the PEM itself as bytes.
Pem = Union[str, "os.PathLike[str]", bytes]


def _pem(value: Optional[Pem], what: str) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    try:
        with open(value, "rb") as file:
            return file.read()
    except OSError as error:
        raise ValueError(f"cannot read {what} {value}: {error.strerror}") from None


def _environment(name: str) -> Optional[str]:
    """A variable's value; unset and blank are alike (None)."""
    value = os.environ.get(name, "")
    return value if value.strip() else None


@dataclass(frozen=True)
class Credentials:
    """What a secured conductor asks of callers. `repr` never shows the token or the key."""

    token: Optional[str] = None
    ca: Optional[bytes] = None
    cert: Optional[bytes] = None
    key: Optional[bytes] = None

    def __repr__(self) -> str:
        return (
            f"Credentials(token={'<redacted>' if self.token else None}, ca={self.ca is not None}, "
            f"cert={self.cert is not None})"
        )

    @staticmethod
    def resolve(
        token: Optional[str] = None,
        token_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        ca: Optional[Pem] = None,
        cert: Optional[Pem] = None,
        key: Optional[Pem] = None,
    ) -> "Credentials":
        """From values or files: the token (else the first line of `token_file`), the CA,
        the client certificate and its key (both or neither), each a path or PEM bytes.
        What is not given comes from the environment as for `baton`: BATON_TOKEN (else
        BATON_TOKEN_FILE), BATON_CA, BATON_CERT with BATON_KEY."""
        env = _environment
        if token is None and token_file is None:
            token, token_file = env("BATON_TOKEN"), env("BATON_TOKEN_FILE")
        if ca is None:
            ca = env("BATON_CA")
        if cert is None and key is None:
            cert, key = env("BATON_CERT"), env("BATON_KEY")
        if token is not None and token.strip():
            token = token.strip()
        elif token_file is not None:
            try:
                with open(token_file, encoding="utf-8") as file:
                    token = (file.readline() or "").strip()
            except OSError as error:
                raise ValueError(f"cannot read token_file {token_file}: {error.strerror}") from None
            if not token:
                raise ValueError(f"the token file {token_file} is empty")
        else:
            token = None
        if token is not None and not all(33 <= ord(c) <= 126 for c in token):
            raise ValueError("the token holds characters an HTTP header cannot carry (only visible ASCII)")
        if (cert is None) != (key is None):
            raise ValueError("cert and key go together: give both or neither")
        return Credentials(token, _pem(ca, "ca"), _pem(cert, "cert"), _pem(key, "key"))

    def metadata(self) -> List[Tuple[str, str]]:
        """The call metadata: the bearer token, if any."""
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def wants_tls(self) -> bool:
        return self.ca is not None or self.cert is not None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert)


NO_CREDENTIALS = Credentials()


def target_of(endpoint: str) -> Tuple[str, bool]:
    """The gRPC target and whether it wants TLS."""
    if endpoint.startswith("https://"):
        return endpoint[len("https://") :].rstrip("/"), True
    if endpoint.startswith("http://"):
        return endpoint[len("http://") :].rstrip("/"), False
    return endpoint, False


def open_channel(endpoint: str, credentials: Credentials = NO_CREDENTIALS) -> grpc.aio.Channel:
    """An asyncio channel; the caller sends `credentials.metadata()` with its calls."""
    target, tls = target_of(endpoint)
    if tls or credentials.wants_tls():
        return grpc.aio.secure_channel(target, credentials.channel_credentials(), options=_OPTIONS)
    return grpc.aio.insecure_channel(target, options=_OPTIONS)


def open_sync_channel(endpoint: str, credentials: Credentials = NO_CREDENTIALS) -> grpc.Channel:
    """A blocking channel that sends the token with every call."""
    target, tls = target_of(endpoint)
    if tls or credentials.wants_tls():
        channel = grpc.secure_channel(target, credentials.channel_credentials(), options=_OPTIONS)
    else:
        channel = grpc.insecure_channel(target, options=_OPTIONS)
    if credentials.token:
        channel = grpc.intercept_channel(channel, _Bearer(credentials.metadata()))
    return channel


class _Details(
    collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the token to every call of a blocking channel (also a plaintext one, where
    gRPC's call credentials are not allowed: a loopback conductor with an auth file)."""

    def __init__(self, metadata: List[Tuple[str, str]]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> _Details:
        metadata = list(details.metadata or []) + self._metadata
        return _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)
