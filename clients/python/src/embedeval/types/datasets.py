"""The registered datasets and their splits."""
from __future__ import annotations

import dataclasses
from typing import (
    Dict,
    List,
)

from ._base import _Message


@dataclasses.dataclass
class SplitInfo(_Message):
    """A named split and its number of images."""

    _proto_name = "embedeval.v1.SplitInfo"

    name: str = ""
    size: int = 0


@dataclasses.dataclass
class DatasetInfo(_Message):
    """A registered dataset."""

    _proto_name = "embedeval.v1.DatasetInfo"

    name: str = ""
    #: Content hash (sha256 over the dataset's files), lowercase hex.
    id: str = ""
    #: "embedeval-npy" | "cifar10" | "cifar100" | "image-folder".
    format: str = ""
    splits: List[SplitInfo] = dataclasses.field(default_factory=list)
    num_classes: int = 0
    #: Shape of one image: [height, width, channels].
    image_shape: List[int] = dataclasses.field(default_factory=list)
    source: str = ""
    license: str = ""
    #: Side every image of a mixed-size image folder is brought to (0: none).
    image_size: int = 0
    #: Fraction of the resized shorter side the centre crop keeps.
    crop_fraction: float = 0.0
    #: The dataset's default evaluated split and kNN/probe split.
    test_split: str = ""
    train_split: str = ""
    #: The class names by label (label ``i`` is ``class_names[i]``): an
    #: image folder's class folders (sorted), CIFAR-10's label names, the
    #: ``class_names`` of an embedeval-npy manifest; empty where the dataset
    #: names none.
    class_names: List[str] = dataclasses.field(default_factory=list)

    @property
    def split_sizes(self) -> Dict[str, int]:
        """Split name to number of images."""
        return {s.name: s.size for s in self.splits}
