"""The client: one gRPC channel to an embedeval server and a method per call.

:class:`Client` is put together from one mixin per gRPC service, each in a
module of its own: ``_models`` (ModelService), ``_datasets``
(DatasetService), ``_embedding`` (EmbeddingService), and ``_evaluation``
(single evaluations) and ``_comparisons`` (comparisons, figures, runs) for
EvaluationService, over ``_connection`` (the channel, TLS, token, deadlines,
retries and error mapping). ``_handles`` holds the handles of detached jobs.
"""
from __future__ import annotations

# Client's parts, and what this module offered before it became a package
# (re-exported as `X as X`, or in __all__), so that imports from
# embedeval.client keep working.
from .._proto import evaluation_pb2 as evaluation_pb2
from .._tensor import EMBED_REQUEST_BYTES as EMBED_REQUEST_BYTES
from .._tensor import EMBEDDINGS_CHUNK_BYTES as EMBEDDINGS_CHUNK_BYTES
from .._tensor import Embeddings, Labels
from .._tensor import _float_rows as _float_rows
from .._upload import CHUNK_BYTES as CHUNK_BYTES
from ._comparisons import FIGURE_FORMATS as FIGURE_FORMATS
from ._comparisons import FIGURE_KINDS as FIGURE_KINDS
from ._comparisons import FIGURE_SIZES as FIGURE_SIZES
from ._comparisons import _Comparisons
from ._comparisons import figure_request as figure_request
from ._connection import MAX_RECEIVE_BYTES as MAX_RECEIVE_BYTES
from ._connection import MAX_SEND_BYTES as MAX_SEND_BYTES
from ._connection import _Connection
from ._connection import parse_url as parse_url
from ._datasets import _Datasets
from ._embedding import _Embedding
from ._evaluation import Labelled, SpecLike, _Evaluation
from ._handles import ComparisonHandle, EvaluationHandle
from ._models import _Models

__all__ = ["Client", "EvaluationHandle", "ComparisonHandle", "SpecLike", "Labelled", "Embeddings", "Labels"]


class Client(_Models, _Datasets, _Embedding, _Evaluation, _Comparisons, _Connection):
    """A connection to an embedeval server.

    Args:
        url: ``"host:port"`` (plaintext, unless `ca_cert` is given),
            ``"http://host:port"`` or ``"https://host:port"`` (TLS).
        token: bearer token, sent as ``authorization: Bearer <token>``
            on every call (servers started with ``--auth-token-file``).
        ca_cert: path to the PEM certificate of the CA that signed the
            server's certificate (or the PEM bytes); ``None`` with https://
            uses the system's roots.
        timeout: seconds each call may take (``None``: no limit). A
            non-detached evaluation whose call times out is stopped by the
            server: use ``detach=True`` for long jobs.
        retries: attempts after the first for idempotent calls (listing and
            getting) that fail UNAVAILABLE, with exponential backoff.
        backoff: seconds before the first retry (doubling after each).
        server_name: TLS server name to check the certificate against, when
            it is not the host of `url`.
        options: more gRPC channel options.

    Use it as a context manager (``with Client() as c:``) or call
    :meth:`close`. Every failed call raises an
    :class:`~embedeval.errors.EmbedevalError` subclass for its gRPC code.
    """

    # Here rather than in _Connection: it returns the Client.
    def __enter__(self) -> Client:
        return self
