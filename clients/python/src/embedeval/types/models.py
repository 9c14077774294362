"""The registered models: their card, input and outputs, and the list of them."""
from __future__ import annotations

import dataclasses
from typing import (
    Dict,
    Iterable,
    List,
    Optional,
)

from ._base import _Message
from .enums import DataType


@dataclasses.dataclass
class TrainingInfo(_Message):
    """How the checkpoint was trained (from its model card)."""

    _proto_name = "embedeval.v1.TrainingInfo"

    #: "infonce", "hard_infonce", "nt_xent", "simple", "hard_simple", or
    #: "other" (a loss of the user's own, named by ``loss_name``).
    loss: str = ""
    #: The contrastive temperature tau (0 when the loss has none).
    temperature: float = 0.0
    dataset: str = ""
    epochs: int = 0
    seed: int = 0
    #: The training run the model is a checkpoint of ("" when none).
    run: str = ""
    #: Its step in the run (an epoch or an iteration count, as the trainer counts).
    step: int = 0
    #: The name of a loss of the user's own (loss "other"; "" otherwise).
    loss_name: str = ""


@dataclasses.dataclass
class InputInfo(_Message):
    """The model's image input and the preprocessing of UINT8 images:
    ``x = (pixel * scale - mean[c]) / std[c]``, laid out as ``layout``."""

    _proto_name = "embedeval.v1.InputInfo"

    name: str = ""
    #: Element type the model takes.
    dtype: DataType = DataType.DATA_TYPE_UNSPECIFIED
    #: Shape with -1 for the batch (and any other dynamic axis).
    shape: List[int] = dataclasses.field(default_factory=list)
    #: "NCHW" or "NHWC".
    layout: str = ""
    scale: float = 0.0
    mean: List[float] = dataclasses.field(default_factory=list)
    std: List[float] = dataclasses.field(default_factory=list)
    #: "bilinear" (a reduced side antialiased) or "none" (images of another
    #: size are refused).
    resize: str = ""
    #: "imagenet", "cifar10", "cifar100", "none", or "" when the card gives the values.
    preset: str = ""
    #: In a report whose dataset's images are not the model's size: their
    #: height and width, and the factor each side was resized by (model side
    #: / image side); 0 where the images were fed at their size.
    image_height: int = 0
    image_width: int = 0
    resize_factor_height: float = 0.0
    resize_factor_width: float = 0.0


@dataclasses.dataclass
class OutputInfo(_Message):
    """One named output of a model and its vector dimension."""

    _proto_name = "embedeval.v1.OutputInfo"

    name: str = ""
    dim: int = 0


@dataclasses.dataclass
class ModelInfo(_Message):
    """A registered model: its card, input, outputs and where it runs."""

    _proto_name = "embedeval.v1.ModelInfo"

    name: str = ""
    #: sha256 of model.onnx, lowercase hex.
    sha256: str = ""
    training: Optional[TrainingInfo] = None
    input: Optional[InputInfo] = None
    outputs: List[OutputInfo] = dataclasses.field(default_factory=list)
    #: The output that holds the embedding.
    embedding_output: str = ""
    #: The output that holds backbone features, when the model has one.
    feature_output: Optional[str] = None
    #: "cpu" or "cuda:N".
    execution_provider: str = ""
    description: str = ""
    size_bytes: int = 0
    #: The card's keys read off the ONNX graph or filled by defaults.
    inferred: List[str] = dataclasses.field(default_factory=list)
    #: What the server had to assume about the model and the user should
    #: check (e.g. no normalisation given: pixels / 255 with nothing
    #: subtracted), each naming the card key or flag that changes it. Every
    #: report of the model carries them too.
    warnings: List[str] = dataclasses.field(default_factory=list)
    #: The model's tags: its card's ``[training]`` keys (but the measured
    #: ``final_loss`` and ``train_seconds``) and its ``[tags]`` table, values
    #: as text (numbers as written: ``"0.2"``, ``"300"``). Sweeps are read
    #: along them (``list_models(tags=...)``, ``compare(tags=..., by=...)``).
    tags: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def embedding_dim(self) -> int:
        """Dimension of the embedding output (0 when unknown)."""
        return next((o.dim for o in self.outputs if o.name == self.embedding_output), 0)


@dataclasses.dataclass
class SkippedModel(_Message):
    """A model folder that did not load, and why."""

    _proto_name = "embedeval.v1.SkippedModel"

    name: str = ""
    reason: str = ""


class ModelList(List[ModelInfo]):
    """The models that loaded (a list, sorted by name); ``skipped`` holds the
    folders that did not load, with their reason."""

    skipped: List[SkippedModel]

    def __init__(self, models: Iterable[ModelInfo] = (), skipped: Optional[Iterable[SkippedModel]] = None) -> None:
        super().__init__(models)
        self.skipped = list(skipped or [])

    def names(self) -> List[str]:
        """The models' names."""
        return [m.name for m in self]
