"""gRPC channels from the endpoint spellings Baton uses: "host:port", "http://host:port"
(plaintext, as the Rust tools write it) or "https://host:port" (TLS, system roots)."""

from __future__ import annotations

from typing import Tuple

import grpc
import grpc.aio

# Results and job snapshots can be large; the conductor enforces its own limits.
_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def target_of(endpoint: str) -> Tuple[str, bool]:
    """The gRPC target and whether it wants TLS."""
    if endpoint.startswith("https://"):
        return endpoint[len("https://") :].rstrip("/"), True
    if endpoint.startswith("http://"):
        return endpoint[len("http://") :].rstrip("/"), False
    return endpoint, False


def open_channel(endpoint: str) -> grpc.aio.Channel:
    target, tls = target_of(endpoint)
    if tls:
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=_OPTIONS)
    return grpc.aio.insecure_channel(target, options=_OPTIONS)


def open_sync_channel(endpoint: str) -> grpc.Channel:
    target, tls = target_of(endpoint)
    if tls:
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=_OPTIONS)
    return grpc.insecure_channel(target, options=_OPTIONS)
