from . import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedRequest(_message.Message):
    __slots__ = ("model", "dataset", "split", "inputs", "output", "normalize", "chunk_rows")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ROWS_FIELD_NUMBER: _ClassVar[int]
    model: str
    dataset: str
    split: str
    inputs: _tensor_pb2.Tensor
    output: str
    normalize: bool
    chunk_rows: int
    def __init__(self, model: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[str] = ..., inputs: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., output: _Optional[str] = ..., normalize: bool = ..., chunk_rows: _Optional[int] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("offset", "embeddings", "labels")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    offset: int
    embeddings: _tensor_pb2.Tensor
    labels: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, offset: _Optional[int] = ..., embeddings: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., labels: _Optional[_Iterable[int]] = ...) -> None: ...
