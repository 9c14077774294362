"""DatasetService calls of the client: list, get, upload (a folder or numpy
arrays) and delete datasets (the mixin :class:`_Datasets` of
:class:`~embedeval.client.Client`)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .._proto import dataset_pb2
from .._upload import PathLike, arrays_manifest, dataset_files, dataset_requests, write_arrays
from ..types import DatasetInfo
from ._connection import _check_name, _Connection


class _Datasets(_Connection):
    """The DatasetService calls of :class:`~embedeval.client.Client`."""

    def list_datasets(self) -> List[DatasetInfo]:
        """Every dataset."""
        r = self._call(self._datasets.ListDatasets, dataset_pb2.ListDatasetsRequest(), idempotent=True)
        return [DatasetInfo.from_proto(d) for d in r.datasets]

    def get_dataset(self, name: str) -> DatasetInfo:
        """One dataset by name (:class:`~embedeval.errors.NotFound` when there is none)."""
        return DatasetInfo.from_proto(
            self._call(self._datasets.GetDataset, dataset_pb2.GetDatasetRequest(name=name), idempotent=True)
        )

    def register_dataset(
        self,
        name: str,
        path: PathLike,
        format: Optional[str] = None,
        image_size: Optional[int] = None,
        channels: Optional[int] = None,
        test_split: Optional[str] = None,
        train_split: Optional[str] = None,
        *,
        crop_fraction: Optional[float] = None,
        replace: bool = False,
    ) -> DatasetInfo:
        """Uploads the folder `path` as dataset `name`: every file under it,
        by relative path, in 1 MiB chunks.

        ``replace=True`` swaps an uploaded dataset of the same name in one
        step (reports made on the old version keep its content id,
        ``report.dataset_id``); without it a name already taken is
        :class:`~embedeval.errors.AlreadyExists`. Bundled datasets are
        read-only.

        A folder with a ``dataset.toml`` is taken as it says; without one the
        format is told from the files (CIFAR batches, ``<split>/<class>/``
        image folders) unless `format` gives it, and `channels` (1 or 3),
        `image_size` (with `crop_fraction`) and the default `test_split` and
        `train_split` go into the manifest the server writes.
        """
        _check_name(name, "dataset")
        files = dataset_files(Path(path))
        header = dataset_pb2.DatasetUpload(
            name=name,
            format=format or "",
            channels=channels or 0,
            image_size=image_size or 0,
            crop_fraction=crop_fraction or 0.0,
            test_split=test_split or "",
            train_split=train_split or "",
            replace=replace,
        )

        return DatasetInfo.from_proto(self._call(self._datasets.RegisterDataset, dataset_requests(header, files)))

    def register_arrays(
        self,
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
    ) -> DatasetInfo:
        """Uploads numpy arrays as dataset `name` (format ``embedeval-npy``).

        Args:
            splits: split name to ``(images, labels)``: images uint8
                ``[n, H, W, C]`` (or ``[n, H, W]`` for one channel), labels
                integers ``[n]``; every split of one image shape. Metrics use
                ``test`` (else ``val``); the kNN bank and probe ``train``.
            num_classes: default: ``len(class_names)`` when they are given,
                else the largest label + 1.
            test_split, train_split: the dataset's default splits, when they
                are not ``test``/``val`` and ``train``.
            pixel_max: the largest pixel value, when it is not 255.
            description, source, license: kept in the manifest.
            class_names: the name of each class by label (label ``i`` is
                ``class_names[i]``), exactly `num_classes` of them; written to
                the manifest's ``class_names``, returned in
                ``DatasetInfo.class_names`` and in the reports'
                ``per_class.names``, and drawn on the per-class figures.
                ValueError (before any upload) for a count other than
                `num_classes` or a label without a name.
        """
        _check_name(name, "dataset")
        manifest, arrays = arrays_manifest(
            name,
            splits,
            num_classes,
            test_split=test_split,
            train_split=train_split,
            pixel_max=pixel_max,
            description=description,
            source=source,
            license=license,
            class_names=class_names,
        )
        with tempfile.TemporaryDirectory(prefix="embedeval-arrays-") as tmp:
            folder = Path(tmp)
            write_arrays(folder, manifest, arrays)
            return self.register_dataset(name, folder)

    def delete_dataset(self, name: str) -> None:
        """Removes an uploaded dataset (bundled datasets: FailedPrecondition)."""
        self._call(self._datasets.DeleteDataset, dataset_pb2.DeleteDatasetRequest(name=name))
