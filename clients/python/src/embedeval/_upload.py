"""The uploads of models and datasets: the request streams of RegisterModel
and RegisterDataset (files in chunks, a model with its size and sha256),
the walk of a dataset folder, and numpy arrays checked and written as an
``embedeval-npy`` folder."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _toml
from ._proto import dataset_pb2, model_pb2
from ._tensor import Labels, _labels

#: Bytes per upload message (model files, dataset files).
CHUNK_BYTES = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]
#: The arrays of each split: uint8 images [n, H, W, C] and int64 labels [n].
SplitArrays = Dict[str, Tuple[npt.NDArray[np.uint8], Labels]]

_NAME = re.compile(r"[A-Za-z0-9._-]+")


def model_requests(
    name: str, card_toml: str, onnx: Union[PathLike, bytes], replace: bool
) -> Iterator[model_pb2.RegisterModelRequest]:
    """The RegisterModel stream of the ONNX file `onnx` (a path, or its
    bytes): the card with the file's size and sha256, then the file in
    :data:`CHUNK_BYTES` chunks. A file is read and hashed here, before the
    call (so that a missing file raises at once), and read again as the
    stream is sent."""
    if isinstance(onnx, (bytes, bytearray, memoryview)):
        content = bytes(onnx)
        size, sha256 = len(content), hashlib.sha256(content).hexdigest()

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(content), CHUNK_BYTES):
                yield content[start : start + CHUNK_BYTES]

    else:
        path = Path(onnx)
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK_BYTES), b""):
                digest.update(block)
                size += len(block)
        sha256 = digest.hexdigest()

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                yield from iter(lambda: f.read(CHUNK_BYTES), b"")

    def requests() -> Iterator[model_pb2.RegisterModelRequest]:
        yield model_pb2.RegisterModelRequest(
            card=model_pb2.ModelUpload(name=name, card_toml=card_toml, size_bytes=size, sha256=sha256, replace=replace)
        )
        for chunk in chunks():
            yield model_pb2.RegisterModelRequest(chunk=chunk)

    return requests()


def dataset_files(root: Path) -> List[Tuple[str, Path]]:
    """Every file under the folder `root` (links followed) as ``(relative
    POSIX path, path)``, sorted; NotADirectoryError for a path that is not a
    folder, ValueError for a folder without files."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    files: List[Tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            files.append((full.relative_to(root).as_posix(), full))
    files.sort()
    if not files:
        raise ValueError(f"{root} holds no files")
    return files


def dataset_requests(
    header: dataset_pb2.DatasetUpload, files: List[Tuple[str, Path]]
) -> Iterator[dataset_pb2.RegisterDatasetRequest]:
    """The RegisterDataset stream: `header`, then each file of `files` (from
    :func:`dataset_files`) in :data:`CHUNK_BYTES` chunks, read as they are sent."""
    yield dataset_pb2.RegisterDatasetRequest(header=header)
    for rel, full in files:
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                piece = dataset_pb2.DatasetFileChunk(path=rel, data=chunk)
                yield dataset_pb2.RegisterDatasetRequest(file=piece)


def arrays_manifest(
    name: str,
    splits: Mapping[str, Tuple[Any, Any]],
    num_classes: Optional[int] = None,
    *,
    test_split: Optional[str] = None,
    train_split: Optional[str] = None,
    pixel_max: Optional[int] = None,
    description: Optional[str] = None,
    source: Optional[str] = None,
    license: Optional[str] = None,
    class_names: Optional[Sequence[str]] = None,
) -> Tuple[Dict[str, Any], SplitArrays]:
    """The ``dataset.toml`` manifest (format ``embedeval-npy``) of the arrays
    of :meth:`Client.register_arrays`, and the arrays checked: uint8 images
    ``[n, H, W, C]`` of one shape, labels int64 ``[n]`` (TypeError or
    ValueError naming the split otherwise)."""
    names: Optional[List[str]] = None
    if class_names is not None:
        if isinstance(class_names, (str, bytes)) or not isinstance(class_names, (Sequence, np.ndarray)):
            raise TypeError(f"class_names must be a list of strings, got {type(class_names).__name__}")
        bad = [n for n in class_names if not isinstance(n, str)]
        if bad:
            raise TypeError(f"class_names must be strings, got {bad[0]!r}")
        names = [str(n) for n in class_names]
        if not names:
            raise ValueError("class_names is empty: give one name per class, by label (or leave it out)")
    if not splits:
        raise ValueError("splits is empty: give e.g. {'train': (images, labels), 'test': (images, labels)}")
    arrays: SplitArrays = {}
    shape: Optional[Tuple[int, int, int]] = None
    for split, pair in splits.items():
        if not isinstance(split, str) or not _NAME.fullmatch(split) or split in (".", ".."):
            raise ValueError(f"split name {split!r} must be letters, digits, '.', '_' or '-'")
        try:
            images, labels = pair
        except (TypeError, ValueError):
            raise TypeError(f"splits[{split!r}] must be a pair (images, labels)") from None
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[0] == 0:
            raise ValueError(
                f"splits[{split!r}] images must be [n, H, W, C] (or [n, H, W]), got shape {np.shape(images)}"
            )
        if x.dtype != np.uint8:
            if not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() > 255:
                raise TypeError(f"splits[{split!r}] images must be uint8 pixels, got {x.dtype}")
            x = x.astype(np.uint8)
        y = _labels(labels, x.shape[0], f"splits[{split!r}] labels")
        if y.size and y.min() < 0:
            raise ValueError(f"splits[{split!r}] labels must be >= 0")
        hwc = (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))
        if shape is None:
            shape = hwc
        elif hwc != shape:
            raise ValueError(f"splits[{split!r}] images are {list(hwc)}, other splits {list(shape)}")
        arrays[split] = (np.ascontiguousarray(x), y)
    assert shape is not None
    largest = int(max(int(y.max()) for _, y in arrays.values()))
    if num_classes is None:
        num_classes = len(names) if names is not None else largest + 1
    if names is not None:
        if len(names) != num_classes:
            raise ValueError(
                f"class_names has {len(names)} names but num_classes is {num_classes}: "
                "give one name per class, by label"
            )
        if largest >= len(names):
            raise ValueError(
                f"label {largest} has no name: class_names has {len(names)} (labels 0..{len(names) - 1})"
            )
    manifest: Dict[str, Any] = {"name": name, "format": "embedeval-npy"}
    for key, value in (("description", description), ("source", source), ("license", license)):
        if value is not None:
            manifest[key] = value
    manifest["num_classes"] = int(num_classes)
    manifest["image_shape"] = list(shape)
    if pixel_max is not None:
        manifest["pixel_max"] = int(pixel_max)
    if test_split is not None:
        manifest["test_split"] = test_split
    if train_split is not None:
        manifest["train_split"] = train_split
    if names is not None:
        manifest["class_names"] = names
    manifest["splits"] = {
        split: {"images": f"{split}_images.npy", "labels": f"{split}_labels.npy", "size": int(x.shape[0])}
        for split, (x, _) in arrays.items()
    }
    return manifest, arrays


def write_arrays(folder: Path, manifest: Mapping[str, Any], arrays: SplitArrays) -> None:
    """Writes `manifest` and the ``.npy`` file of each split's images and
    labels into `folder`: the dataset folder :meth:`Client.register_dataset`
    uploads."""
    header = "# embedeval dataset manifest (format embedeval-npy).\n"
    (folder / "dataset.toml").write_text(header + _toml.dumps(manifest), encoding="utf-8")
    for split, (x, y) in arrays.items():
        np.save(folder / f"{split}_images.npy", x, allow_pickle=False)
        np.save(folder / f"{split}_labels.npy", y.astype("<i8"), allow_pickle=False)
