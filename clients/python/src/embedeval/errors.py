"""Exceptions: every failed call raises an :class:`EmbedevalError` carrying the
gRPC status code, as the subclass for that code where there is one."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Dict, Optional, Tuple, Type

import grpc

if TYPE_CHECKING:  # pragma: no cover
    from .types import EvaluationReport

__all__ = [
    "EmbedevalError",
    "NotFound",
    "InvalidArgument",
    "AlreadyExists",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "Cancelled",
    "DeadlineExceeded",
    "Unauthenticated",
    "PermissionDenied",
    "Internal",
    "MalformedReply",
    "EvaluationFailed",
    "from_rpc_error",
]


class EmbedevalError(Exception):
    """A call to the embedeval service failed.

    Attributes:
        code: the gRPC status code (``grpc.StatusCode``), or ``None`` for an
            error found by the client itself (see :class:`EvaluationFailed`).
        message: the server's message (the status details).
    """

    code: Optional[grpc.StatusCode]
    message: str

    def __init__(self, code: Optional[grpc.StatusCode], message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code.name}: {message}" if code is not None else message)

    def __reduce__(self) -> Tuple[Any, ...]:  # keeps the exception picklable
        return (type(self), (self.code, self.message))


class _CodedError(EmbedevalError):
    """An error whose class fixes the code: constructed from the message alone."""

    grpc_code: ClassVar[grpc.StatusCode]

    def __init__(self, message: str = "") -> None:
        super().__init__(self.grpc_code, message)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.message,))


class NotFound(_CodedError, LookupError):
    """NOT_FOUND: no model, dataset, split or evaluation of that name."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class InvalidArgument(_CodedError, ValueError):
    """INVALID_ARGUMENT: the request is wrong (a bad name, shape, spec value...)."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class AlreadyExists(_CodedError):
    """ALREADY_EXISTS: a model or dataset of that name is registered."""

    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class ResourceExhausted(_CodedError):
    """RESOURCE_EXHAUSTED: a size limit, or the evaluation queue is full."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(_CodedError):
    """FAILED_PRECONDITION: e.g. removing a bundled (read-only) model."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(_CodedError):
    """UNAVAILABLE: the server cannot be reached, is starting or shutting down."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class Cancelled(_CodedError):
    """CANCELLED: the call was cancelled."""

    grpc_code = grpc.StatusCode.CANCELLED


class DeadlineExceeded(_CodedError):
    """DEADLINE_EXCEEDED: the call's timeout passed."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(_CodedError):
    """UNAUTHENTICATED: a missing or wrong bearer token."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(_CodedError):
    """PERMISSION_DENIED."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class Internal(_CodedError):
    """INTERNAL: a fault of the server (or a reply the client cannot make sense of)."""

    grpc_code = grpc.StatusCode.INTERNAL


class MalformedReply(Internal, ValueError):
    """INTERNAL, found by the client itself: a message whose fields do not
    fit together, such as embeddings that do not tile the rows asked for or
    a per-class array of the wrong length for its classes. A shape error, so
    also a ``ValueError`` (as the client's checks of its own arguments
    are); never mapped from a server's status."""


class EvaluationFailed(EmbedevalError):
    """An evaluation ended FAILED or CANCELLED (raised by
    :meth:`EvaluationReport.raise_for_status`); ``report`` holds it."""

    report: EvaluationReport

    def __init__(self, report: EvaluationReport) -> None:
        self.report = report
        status = getattr(report.status, "value", report.status)
        text = f"evaluation {report.id} of {report.model} on {report.dataset} {status}"
        super().__init__(None, f"{text}: {report.error}" if report.error else text)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.report,))


_BY_CODE: Dict[grpc.StatusCode, Type[_CodedError]] = {
    cls.grpc_code: cls
    for cls in (
        NotFound,
        InvalidArgument,
        AlreadyExists,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        Cancelled,
        DeadlineExceeded,
        Unauthenticated,
        PermissionDenied,
        Internal,
    )
}


def error_for(code: grpc.StatusCode, message: str) -> EmbedevalError:
    """The exception for `code`: its subclass, or the base class."""
    cls = _BY_CODE.get(code)
    return cls(message) if cls is not None else EmbedevalError(code, message)


def from_rpc_error(err: grpc.RpcError) -> EmbedevalError:
    """Maps a ``grpc.RpcError`` to the exception for its code."""
    code = err.code() if callable(getattr(err, "code", None)) else None
    details = err.details() if callable(getattr(err, "details", None)) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return error_for(code, details or str(err))
