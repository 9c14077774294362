"""The machinery of the typed results: a protobuf message's fields as a
dataclass's (:meth:`_Message.from_proto`), and a dataclass as plain
JSON-ready values (:meth:`_Message.to_dict`)."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    Mapping,
    Type,
    TypeVar,
    cast,
)

import numpy as np
from google.protobuf import descriptor as _descriptor
from google.protobuf.message import Message

from .enums import _ENUMS

if TYPE_CHECKING:  # named in casts only
    from google.protobuf import timestamp_pb2


T = TypeVar("T", bound="_Message")


def _plain(value: Any) -> Any:
    """`value` as JSON-ready Python: dicts, lists, str, numbers, bools, None."""
    if isinstance(value, _Message):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):  # NaN (undefined) as None, so that the dict is strict JSON
        if value.dtype.kind == "f":
            cells = value.astype(object)
            cells[np.isnan(value)] = None
            return cells.tolist()
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _is_repeated(fd: _descriptor.FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)
    if isinstance(flag, bool):
        return flag
    return bool(fd.label == _descriptor.FieldDescriptor.LABEL_REPEATED)


def _enum_value(fd: _descriptor.FieldDescriptor, number: int) -> Any:
    cls = _ENUMS.get(fd.enum_type.full_name)
    value = fd.enum_type.values_by_number.get(number)
    if cls is None or value is None:  # an enum or value newer than this client
        return number
    return cls(value.name)


class _Message:
    """Conversion from a protobuf message and to a plain dict."""

    #: Full name of the message the dataclass mirrors.
    _proto_name: str = ""
    #: Set by ``@dataclasses.dataclass`` on every subclass; declared so that
    #: the type checker takes the subclasses for dataclasses.
    __dataclass_fields__: ClassVar[Dict[str, dataclasses.Field[Any]]]

    @classmethod
    def from_proto(cls: Type[T], msg: Message) -> T:
        """The dataclass holding every field of `msg`."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: Dict[str, Any] = {}
        for fd in msg.DESCRIPTOR.fields:
            if fd.name in names:
                kwargs[fd.name] = _field_value(msg, fd)
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        """Every field as plain JSON-ready values (enums as their names,
        timestamps as RFC 3339 strings, absent values as ``None``)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _convert_message(value: Message) -> Any:
    name = value.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        return cast("timestamp_pb2.Timestamp", value).ToDatetime(tzinfo=_dt.timezone.utc)
    cls = _CLASSES.get(name)
    if cls is None:  # a message this client does not know: a dict of it
        return {fd.name: _field_value(value, fd) for fd in value.DESCRIPTOR.fields}
    return cls.from_proto(value)


def _field_value(msg: Message, fd: _descriptor.FieldDescriptor) -> Any:
    value = getattr(msg, fd.name)
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        value_fd = fd.message_type.fields_by_name["value"]
        if value_fd.message_type is not None:
            return {k: _convert_message(v) for k, v in value.items()}
        return dict(value)
    if _is_repeated(fd):
        if fd.message_type is not None:
            return [_convert_message(v) for v in value]
        if fd.enum_type is not None:
            return [_enum_value(fd, v) for v in value]
        return list(value)
    if fd.message_type is not None:
        return _convert_message(value) if msg.HasField(fd.name) else None
    if fd.has_presence and not msg.HasField(fd.name):
        return None
    if fd.enum_type is not None:
        return _enum_value(fd, value)
    return value


#: The dataclass of each message by its full name, filled by the package
#: (``embedeval.types``) once every class is defined.
_CLASSES: Dict[str, Type[_Message]] = {}
