from . import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListModelsRequest(_message.Message):
    __slots__ = ("tags",)
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "skipped")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedModel, _Mapping]]] = ...) -> None: ...

class SkippedModel(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TrainingInfo(_message.Message):
    __slots__ = ("loss", "temperature", "dataset", "epochs", "seed", "run", "step", "loss_name")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_NAME_FIELD_NUMBER: _ClassVar[int]
    loss: str
    temperature: float
    dataset: str
    epochs: int
    seed: int
    run: str
    step: int
    loss_name: str
    def __init__(self, loss: _Optional[str] = ..., temperature: _Optional[float] = ..., dataset: _Optional[str] = ..., epochs: _Optional[int] = ..., seed: _Optional[int] = ..., run: _Optional[str] = ..., step: _Optional[int] = ..., loss_name: _Optional[str] = ...) -> None: ...

class InputInfo(_message.Message):
    __slots__ = ("name", "dtype", "shape", "layout", "scale", "mean", "std", "resize", "preset", "image_height", "image_width", "resize_factor_height", "resize_factor_width")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FACTOR_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FACTOR_WIDTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: _tensor_pb2.DataType
    shape: _containers.RepeatedScalarFieldContainer[int]
    layout: str
    scale: float
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    resize: str
    preset: str
    image_height: int
    image_width: int
    resize_factor_height: float
    resize_factor_width: float
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[_Union[_tensor_pb2.DataType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., layout: _Optional[str] = ..., scale: _Optional[float] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., resize: _Optional[str] = ..., preset: _Optional[str] = ..., image_height: _Optional[int] = ..., image_width: _Optional[int] = ..., resize_factor_height: _Optional[float] = ..., resize_factor_width: _Optional[float] = ...) -> None: ...

class OutputInfo(_message.Message):
    __slots__ = ("name", "dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "sha256", "training", "input", "outputs", "embedding_output", "feature_output", "execution_provider", "description", "size_bytes", "inferred", "warnings", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INFERRED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    training: TrainingInfo
    input: InputInfo
    outputs: _containers.RepeatedCompositeFieldContainer[OutputInfo]
    embedding_output: str
    feature_output: str
    execution_provider: str
    description: str
    size_bytes: int
    inferred: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., training: _Optional[_Union[TrainingInfo, _Mapping]] = ..., input: _Optional[_Union[InputInfo, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[OutputInfo, _Mapping]]] = ..., embedding_output: _Optional[str] = ..., feature_output: _Optional[str] = ..., execution_provider: _Optional[str] = ..., description: _Optional[str] = ..., size_bytes: _Optional[int] = ..., inferred: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ModelUpload(_message.Message):
    __slots__ = ("name", "card_toml", "size_bytes", "sha256", "replace")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CARD_TOML_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    card_toml: str
    size_bytes: int
    sha256: str
    replace: bool
    def __init__(self, name: _Optional[str] = ..., card_toml: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., replace: bool = ...) -> None: ...

class RegisterModelRequest(_message.Message):
    __slots__ = ("card", "chunk")
    CARD_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    card: ModelUpload
    chunk: bytes
    def __init__(self, card: _Optional[_Union[ModelUpload, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RenameModelRequest(_message.Message):
    __slots__ = ("name", "new_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    new_name: str
    def __init__(self, name: _Optional[str] = ..., new_name: _Optional[str] = ...) -> None: ...
