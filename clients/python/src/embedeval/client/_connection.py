"""The plumbing every call of the client goes through: the gRPC channel
(plaintext or TLS), the bearer token, each call's deadline, the retries of
idempotent calls on UNAVAILABLE, and the mapping of gRPC errors to
:mod:`embedeval.errors`. The services' mixins subclass :class:`_Connection`
and call through its ``_call`` and ``_stream``."""
from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Any, Callable, Generator, List, Optional, Sequence, Tuple, TypeVar, Union

import grpc

from .._proto import dataset_pb2_grpc, embedding_pb2_grpc, evaluation_pb2_grpc, model_pb2_grpc
from .._upload import PathLike
from ..errors import from_rpc_error

#: Largest message the client accepts: the server decides what it sends.
MAX_RECEIVE_BYTES = 1 << 30
#: Largest message the client sends (the server's default limit).
MAX_SEND_BYTES = 64 << 20

R = TypeVar("R")


def parse_url(url: str) -> Tuple[str, Optional[bool]]:
    """The gRPC target ("host:port") of `url` and whether it asks for TLS
    (True for https://, False for http://, None without a scheme)."""
    text = url.strip()
    tls: Optional[bool] = None
    if "://" in text:
        scheme, text = text.split("://", 1)
        scheme = scheme.lower()
        if scheme == "https":
            tls = True
        elif scheme == "http":
            tls = False
        else:
            raise ValueError(f"url {url!r}: the scheme must be http:// or https://")
    text = text.rstrip("/")
    if not text or "/" in text:
        raise ValueError(f"url {url!r} must be host:port, http://host:port or https://host:port")
    if not re.search(r":\d+$", text):
        if tls is None:
            raise ValueError(f"url {url!r} has no port: give host:port")
        text += ":443" if tls else ":80"
    return text, tls


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"the {what} name must be a non-empty string")
    return name


class _Connection:
    """The channel and the calls' plumbing of :class:`~embedeval.client.Client`
    (whose docstring describes the arguments)."""

    def __init__(
        self,
        url: str = "127.0.0.1:50051",
        token: Optional[str] = None,
        ca_cert: Union[None, PathLike, bytes] = None,
        timeout: Optional[float] = None,
        *,
        retries: int = 3,
        backoff: float = 0.2,
        server_name: Optional[str] = None,
        options: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        target, tls = parse_url(url)
        if tls is False and ca_cert is not None:
            raise ValueError(f"ca_cert is for TLS, but {url!r} is a plaintext http:// URL: use https://")
        if tls is None:
            tls = ca_cert is not None
        self.url = url
        self.target = target
        self.tls = tls
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        from .. import __version__

        opts: List[Tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.primary_user_agent", f"embedeval-python/{__version__}"),
        ]
        if server_name:
            opts.append(("grpc.ssl_target_name_override", server_name))
        opts.extend(options)
        if tls:
            root: Optional[bytes]
            if ca_cert is None:
                root = None
            elif isinstance(ca_cert, bytes):
                root = ca_cert
            else:
                root = Path(ca_cert).read_bytes()
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self._channel = grpc.secure_channel(target, credentials, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        self._metadata: Optional[Tuple[Tuple[str, str], ...]] = None
        if token is not None:
            token = token.strip()
            if not token:
                raise ValueError("token is empty")
            self._metadata = (("authorization", f"Bearer {token}"),)
        self._models = model_pb2_grpc.ModelServiceStub(self._channel)
        self._datasets = dataset_pb2_grpc.DatasetServiceStub(self._channel)
        self._embedding = embedding_pb2_grpc.EmbeddingServiceStub(self._channel)
        self._evaluation = evaluation_pb2_grpc.EvaluationServiceStub(self._channel)

    # -- plumbing -------------------------------------------------------------

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r}{', tls' if self.tls else ''})"

    def close(self) -> None:
        """Closes the channel (calls in flight are cancelled)."""
        self._channel.close()

    @property
    def channel(self) -> grpc.Channel:
        """The underlying gRPC channel."""
        return self._channel

    def _call(self, method: Callable[..., R], request: Any, *, idempotent: bool = False) -> R:
        """A unary response call; idempotent calls are retried on UNAVAILABLE."""
        attempts = 1 + (self.retries if idempotent else 0)
        delay = self.backoff
        for attempt in range(attempts):
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt + 1 < attempts:
                    time.sleep(delay * (0.9 + 0.2 * random.random()))
                    delay *= 2
                    continue
                raise from_rpc_error(e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream(self, method: Callable[..., Any], request: Any) -> Generator[Any, None, None]:
        """A server-streaming call's messages; the call is cancelled when the
        iteration stops early."""
        try:
            call = method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:  # pragma: no cover - grpc raises while iterating
            raise from_rpc_error(e) from e
        try:
            yield from call
        except grpc.RpcError as e:
            raise from_rpc_error(e) from e
        finally:
            call.cancel()
