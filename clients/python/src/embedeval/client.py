"""The client: one gRPC channel to an embedeval server and a method per call."""
from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)

import grpc
import numpy as np
import numpy.typing as npt
from google.protobuf.message import Message

from . import _toml
from ._progress import ProgressCallback, ProgressDisplay
from ._proto import (
    dataset_pb2,
    dataset_pb2_grpc,
    embedding_pb2,
    embedding_pb2_grpc,
    evaluation_pb2,
    evaluation_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
)
from ._tensor import EMBED_REQUEST_BYTES as EMBED_REQUEST_BYTES
from ._tensor import EMBEDDINGS_CHUNK_BYTES as EMBEDDINGS_CHUNK_BYTES
from ._tensor import (
    Embeddings,
    Labels,
    _float_rows,
    _from_tensor,
    _labels,
    _tensor,
    embeddings_requests,
    image_batches,
    tile_embeddings,
)
from ._upload import CHUNK_BYTES as CHUNK_BYTES
from ._upload import PathLike, arrays_manifest, dataset_files, dataset_requests, model_requests, write_arrays
from .errors import EmbedevalError, Internal, MalformedReply, from_rpc_error
from .types import (
    Accepted,
    AugmentationLike,
    Comparison,
    ComparisonSummary,
    DatasetInfo,
    EvaluationReport,
    EvaluationStatus,
    ExcludedModel,
    Figure,
    MetricSpec,
    ModelInfo,
    ModelList,
    Progress,
    Run,
    RunSummary,
    SkippedModel,
    augmentation_to_proto,
    spec_to_proto,
)

__all__ = ["Client", "EvaluationHandle", "ComparisonHandle", "SpecLike", "Labelled", "Embeddings", "Labels"]

#: Largest message the client accepts: the server decides what it sends.
MAX_RECEIVE_BYTES = 1 << 30
#: Largest message the client sends (the server's default limit).
MAX_SEND_BYTES = 64 << 20

SpecLike = Union[None, MetricSpec, Mapping[str, Any], Message]
#: Embeddings and their labels: (float array [n, d], int array [n]).
Labelled = Tuple[Any, Any]
R = TypeVar("R")
E = TypeVar("E", bound=int)

#: The figure options by the names the CLI takes (``embedeval plot --kind
#: ut|accuracy|negatives|penalty|classes|confusion|pareto --plot-format
#: svg|png --plot-size screen|column``).
FIGURE_KINDS: Mapping[str, evaluation_pb2.FigureKind] = {
    "ut": evaluation_pb2.UNIFORMITY_TOLERANCE,
    "accuracy": evaluation_pb2.ACCURACY,
    "negatives": evaluation_pb2.NEGATIVES,
    "penalty": evaluation_pb2.PENALTY,
    "classes": evaluation_pb2.CLASSES,
    "confusion": evaluation_pb2.CONFUSION,
    "pareto": evaluation_pb2.PARETO,
}
FIGURE_FORMATS: Mapping[str, evaluation_pb2.FigureFormat] = {"svg": evaluation_pb2.SVG, "png": evaluation_pb2.PNG}
FIGURE_SIZES: Mapping[str, evaluation_pb2.FigureSize] = {
    "screen": evaluation_pb2.SCREEN,
    "column": evaluation_pb2.COLUMN,
}


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


def _figure_option(value: str, options: Mapping[str, E], what: str) -> E:
    """The enum number of a figure option named as on the command line."""
    number = options.get(value.lower()) if isinstance(value, str) else None
    if number is None:
        raise ValueError(f"unknown figure {what} {value!r}: one of {', '.join(options)}")
    return number


def figure_request(
    id: str,
    kind: str = "ut",
    format: str = "svg",
    size: str = "screen",
    x: str = "",
    group_by: str = "",
    label: str = "",
) -> Message:
    """The RenderFigure request for the CLI's names of kind, format and size
    (ValueError for any other name), with the accuracy figure's `x` and
    `group_by` and the uniformity-tolerance figure's `label` as given (""
    for the server's defaults; TypeError for anything but a string: the
    server checks the names)."""
    for name, value in (("x", x), ("group_by", group_by), ("label", label)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a tag name, got {type(value).__name__}")
    return evaluation_pb2.RenderFigureRequest(
        id=id,
        kind=_figure_option(kind, FIGURE_KINDS, "kind"),
        format=_figure_option(format, FIGURE_FORMATS, "format"),
        size=_figure_option(size, FIGURE_SIZES, "size"),
        x=x,
        group_by=group_by,
        label=label,
    )


def _spec_with(
    spec: SpecLike, augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None
) -> Optional[evaluation_pb2.MetricSpec]:
    """The MetricSpec message of `spec` with `augmentation` and
    `positives_split` set in it (a copy: a message passed in is not changed).
    Each may be given as an argument or in the spec, not both."""
    msg = spec_to_proto(spec)
    if augmentation is None and positives_split is None:
        return msg
    out = evaluation_pb2.MetricSpec()
    if msg is not None:
        out.CopyFrom(msg)
    if augmentation is not None:
        if out.HasField("augmentation"):
            raise ValueError("augmentation is given both in spec and as augmentation=: give it once")
        out.augmentation.CopyFrom(augmentation_to_proto(augmentation))
        out.augmentation.SetInParent()
    if positives_split is not None:
        if not isinstance(positives_split, str):
            raise TypeError(f"positives_split must be a split name, got {type(positives_split).__name__}")
        if out.positives_split and out.positives_split != positives_split:
            raise ValueError("positives_split is given both in spec and as positives_split=: give it once")
        out.positives_split = positives_split
    return out


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"the {what} name must be a non-empty string")
    return name


class Client:
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
        from . import __version__

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

    def __enter__(self) -> Client:
        return self

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

    # -- models ---------------------------------------------------------------

    def list_models(self, tags: Optional[Mapping[str, Any]] = None) -> ModelList:
        """Every model that loaded, sorted by name; ``.skipped`` lists the
        folders that did not load, with their reason.

        Args:
            tags: only the models that have every one of these tags with
                these values (``{"loss": "infonce", "temperature": "0.2"}``;
                ``ModelInfo.tags``). Values are compared as text, the way
                the server writes a card's values (``"0.2"``, ``"1"`` for
                1.0, ``"300"``): a number given here is turned into that
                text. ``None`` or empty: every model.
        """
        request = model_pb2.ListModelsRequest(tags=_toml.check_tags(tags))
        r = self._call(self._models.ListModels, request, idempotent=True)
        return ModelList(
            [ModelInfo.from_proto(m) for m in r.models],
            [SkippedModel.from_proto(s) for s in r.skipped],
        )

    def get_model(self, name: str) -> ModelInfo:
        """One model by name (:class:`~embedeval.errors.NotFound` when there is none)."""
        request = model_pb2.GetModelRequest(name=name)
        return ModelInfo.from_proto(self._call(self._models.GetModel, request, idempotent=True))

    def register_model(
        self,
        name: str,
        onnx_path: Union[PathLike, bytes],
        loss: Optional[str] = None,
        temperature: Optional[float] = None,
        preset: Optional[str] = None,
        card: Optional[PathLike] = None,
        replace: bool = False,
        *,
        resize: Optional[str] = None,
        embedding_output: Optional[str] = None,
        features_output: Optional[str] = None,
        run: Optional[str] = None,
        step: Optional[int] = None,
        loss_name: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> ModelInfo:
        """Uploads an ONNX encoder as model `name`.

        The card is `card` (a model.toml path or its TOML text) with the
        given keys set over it: ``loss``, ``loss_name`` and ``temperature``
        (``[training]``; the loss is required, the temperature for the
        losses that have one), ``preset`` and ``resize`` (``[input]``),
        ``embedding_output`` and ``features_output`` (``[outputs]``),
        ``run`` and ``step`` (``[training]``: the training run the model is
        a checkpoint of, and its step in it; see :meth:`get_run`). What the
        card leaves out is read off the ONNX graph (``ModelInfo.inferred``
        says which keys).

        `tags` (a dict of key to value) are set last, as the CLI's ``--tag
        k=v`` sets them: a key the card's ``[training]`` has takes the
        value, parsed to the type it has there (``{"seed": "1"}`` over
        ``seed = 0`` writes ``seed = 1``; ValueError before any upload when
        it does not parse), any other key goes into the card's ``[tags]``
        table. The model's tags (``ModelInfo.tags``) are its ``[training]``
        keys (but the measured ``final_loss`` and ``train_seconds``) and its
        ``[tags]``; keys are 1-64 of ``A-Z a-z 0-9 _ . -``.

        The loss is one of "infonce", "hard_infonce", "nt_xent", "simple",
        "hard_simple", or "other" for a loss of your own, named by
        `loss_name` (``loss="other", loss_name="my-loss"``); the server
        refuses any other name with
        :class:`~embedeval.errors.InvalidArgument` naming the nearest known
        ones (e.g. "simclr": nt_xent).

        What the server had to assume about the model is in
        ``ModelInfo.warnings``: a float model whose card gives neither a
        `preset` nor its own scale, mean and std is fed pixels / 255 with
        nothing subtracted, and warned about; ``preset="none"`` says that
        this is right.

        The file is streamed in 1 MiB chunks with its size and sha256, and
        validated by the server before it becomes visible. `onnx_path` may
        also be the ONNX bytes. ``replace=True`` swaps an uploaded model of
        the same name in one step; without it a name already taken is
        :class:`~embedeval.errors.AlreadyExists` (whose message names the
        card keys that differ when the model under that name has the same
        ONNX file). Bundled models are read-only.
        """
        _check_name(name, "model")
        card_toml = _toml.build_card(
            card,
            loss=loss,
            loss_name=loss_name,
            temperature=temperature,
            preset=preset,
            resize=resize,
            embedding_output=embedding_output,
            features_output=features_output,
            run=run,
            step=step,
            tags=tags,
        )
        requests = model_requests(name, card_toml, onnx_path, replace)
        return ModelInfo.from_proto(self._call(self._models.RegisterModel, requests))

    def delete_model(self, name: str) -> None:
        """Removes an uploaded model (bundled models: FailedPrecondition)."""
        self._call(self._models.DeleteModel, model_pb2.DeleteModelRequest(name=name))

    def rename_model(self, name: str, new_name: str) -> ModelInfo:
        """Gives the uploaded model `name` the name `new_name` (its ONNX file
        and card unchanged); returns it under its new name. Its earlier
        reports keep the name they were made under.

        Raises :class:`~embedeval.errors.NotFound` when there is no such
        model, :class:`~embedeval.errors.AlreadyExists` when `new_name` is
        taken, :class:`~embedeval.errors.InvalidArgument` for a new name
        that is not ``[a-z0-9._-]+``, and
        :class:`~embedeval.errors.FailedPrecondition` for a bundled
        (read-only) model.
        """
        _check_name(name, "model")
        _check_name(new_name, "new model")
        return ModelInfo.from_proto(
            self._call(self._models.RenameModel, model_pb2.RenameModelRequest(name=name, new_name=new_name))
        )

    # -- datasets -------------------------------------------------------------

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

    # -- embeddings -----------------------------------------------------------

    @overload
    def embed(
        self, model: str, images: Optional[Any] = None, dataset: Optional[str] = None, split: str = "test",
        output: str = "", normalize: bool = False, *, return_labels: Literal[False] = False, chunk_rows: int = 0,
    ) -> Embeddings: ...

    @overload
    def embed(
        self, model: str, images: Optional[Any] = None, dataset: Optional[str] = None, split: str = "test",
        output: str = "", normalize: bool = False, *, return_labels: Literal[True], chunk_rows: int = 0,
    ) -> Tuple[Embeddings, Labels]: ...

    @overload
    def embed(
        self, model: str, images: Optional[Any] = None, dataset: Optional[str] = None, split: str = "test",
        output: str = "", normalize: bool = False, *, return_labels: bool, chunk_rows: int = 0,
    ) -> Union[Embeddings, Tuple[Embeddings, Labels]]: ...

    def embed(
        self,
        model: str,
        images: Optional[Any] = None,
        dataset: Optional[str] = None,
        split: str = "test",
        output: str = "",
        normalize: bool = False,
        *,
        return_labels: bool = False,
        chunk_rows: int = 0,
    ) -> Union[Embeddings, Tuple[Embeddings, Labels]]:
        """Runs `model` over inline `images` or a `dataset` split.

        Args:
            images: uint8 ``[n, H, W, C]`` pixels (they get the model card's
                preprocessing and resize), or float32 rows in the model's own
                input shape (fed as they are). Large arrays are sent in
                several requests.
            dataset, split: a registered dataset's split instead.
            output: the model output to return (default its embedding;
                e.g. ``"features"``).
            normalize: L2-normalise each row.
            return_labels: also return the rows' labels (dataset splits).
            chunk_rows: most rows per streamed response (0: the server's).

        Returns:
            float32 ``[n, d]`` (and int64 labels ``[n]`` with `return_labels`).
        """
        if (images is None) == (dataset is None):
            raise ValueError("give either images or a dataset (and split)")
        base: Dict[str, Any] = dict(model=model, output=output, normalize=normalize, chunk_rows=chunk_rows)
        if dataset is not None:
            emb, labels = self._embed_one(embedding_pb2.EmbedRequest(dataset=dataset, split=split, **base), None)
        else:
            parts, label_parts = [], []
            for batch in image_batches(images):
                e, lab = self._embed_one(embedding_pb2.EmbedRequest(inputs=_tensor(batch), **base), batch.shape[0])
                parts.append(e)
                label_parts.append(lab)
            emb = parts[0] if len(parts) == 1 else np.concatenate(parts)
            labels = label_parts[0] if len(label_parts) == 1 else np.concatenate(label_parts)
        return (emb, labels) if return_labels else emb

    def _embed_one(self, request: embedding_pb2.EmbedRequest, expected: Optional[int]) -> Tuple[Embeddings, Labels]:
        chunks: List[Tuple[int, Embeddings, Sequence[int]]] = []
        for msg in self._stream(self._embedding.Embed, request):
            if not msg.HasField("embeddings"):
                raise MalformedReply("an Embed response without embeddings")
            chunks.append((int(msg.offset), _from_tensor(msg.embeddings), msg.labels))
        return tile_embeddings(chunks, expected)

    # -- evaluations ----------------------------------------------------------

    # detach=False (the default) gives the report, detach=True the handle:
    # given by keyword or in its place, or a bool only known when it runs.
    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike = None, test_split: str = "", train_split: str = "",
        progress: bool = True, detach: Literal[False] = False, *, on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> EvaluationReport: ...

    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike = None, test_split: str = "", train_split: str = "",
        progress: bool = True, *, detach: Literal[True], on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> EvaluationHandle: ...

    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike, test_split: str, train_split: str,
        progress: bool, detach: Literal[True], *, on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> EvaluationHandle: ...

    @overload
    def evaluate(
        self, model: str, dataset: str, spec: SpecLike = None, test_split: str = "", train_split: str = "",
        progress: bool = True, detach: bool = False, *, on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None, positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> Union[EvaluationReport, EvaluationHandle]: ...

    def evaluate(
        self,
        model: str,
        dataset: str,
        spec: SpecLike = None,
        test_split: str = "",
        train_split: str = "",
        progress: bool = True,
        detach: bool = False,
        *,
        on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
    ) -> Union[EvaluationReport, EvaluationHandle]:
        """Evaluates `model` on `dataset`.

        Args:
            spec: a :class:`~embedeval.types.MetricSpec`, or a dict of its
                fields (e.g. ``{"knn_k": 20, "skip_linear": True}``); absent
                fields take the server's defaults.
            test_split, train_split: the splits to evaluate and to fit the
                kNN bank and the probe on (default: the dataset's).
            progress: show tqdm bars (when tqdm is installed).
            detach: return at once with an :class:`EvaluationHandle` (the job
                runs on without this client); else the call follows the job,
                and interrupting it stops the evaluation.
            on_progress: called with each :class:`~embedeval.types.Progress`.
            augmentation: how the positive views of the alignment and the
                positive similarity are made (``spec.augmentation``): a
                recipe name (``"simclr"``, the default; ``"instdisc"``;
                ``"none"``: the view is the image itself, so alignment 0 and
                positive similarity 1), an
                :class:`~embedeval.types.Augmentation` or a dict of its
                fields (``{"recipe": "simclr", "crop_scale_min": 0.5}``).
                The report echoes it filled in (``report.spec.augmentation``).
            positives_split: a split of the dataset holding a positive view
                of each test image, row for row (same length, same labels),
                used instead of the augmentation (``spec.positives_split``).
                Each of the two may be given here or in `spec`, not both
                (ValueError).
            tags: tags of this evaluation (``{"sweep": "lr-0.1"}``; keys
                1-64 of ``A-Z a-z 0-9 _ . -``, values text, a number turned
                into the text the server writes), set over the model's own
                in ``report.tags`` (a key the model has too takes this
                value). The model's card is not changed.

        Returns:
            the :class:`~embedeval.types.EvaluationReport` (in whatever
            status it ended: see ``report.raise_for_status()``), or an
            :class:`EvaluationHandle` with `detach`.
        """
        request = evaluation_pb2.EvaluateRequest(
            model=model,
            dataset=dataset,
            spec=_spec_with(spec, augmentation, positives_split),
            detach=detach,
            test_split=test_split,
            train_split=train_split,
            tags=_toml.check_tags(tags),
        )
        events = self._stream(self._evaluation.Evaluate, request)
        try:
            if detach:
                for event in events:
                    if event.HasField("accepted"):
                        return EvaluationHandle(self, Accepted.from_proto(event.accepted))
                raise Internal("the server ended a detached Evaluate without accepting it")
            return self._follow(events, progress, on_progress)
        finally:
            events.close()

    def _follow(
        self, events: Iterable[Any], progress: bool, on_progress: Optional[ProgressCallback]
    ) -> EvaluationReport:
        with ProgressDisplay(progress, on_progress) as display:
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "progress":
                    display.update(Progress.from_proto(event.progress))
                elif kind == "report":
                    return EvaluationReport.from_proto(event.report)
        raise Internal("the server ended the stream without a report")

    @overload
    def evaluate_embeddings(
        self, train: Optional[Labelled] = None, test: Optional[Labelled] = None, test_positive: Optional[Any] = None,
        spec: SpecLike = None, name: str = "embeddings", loss: str = "", temperature: Optional[float] = None, *,
        dataset: str = "", detach: Literal[False] = False, loss_name: str = "",
    ) -> EvaluationReport: ...

    @overload
    def evaluate_embeddings(
        self, train: Optional[Labelled] = None, test: Optional[Labelled] = None, test_positive: Optional[Any] = None,
        spec: SpecLike = None, name: str = "embeddings", loss: str = "", temperature: Optional[float] = None, *,
        dataset: str = "", detach: Literal[True], loss_name: str = "",
    ) -> EvaluationHandle: ...

    @overload
    def evaluate_embeddings(
        self, train: Optional[Labelled] = None, test: Optional[Labelled] = None, test_positive: Optional[Any] = None,
        spec: SpecLike = None, name: str = "embeddings", loss: str = "", temperature: Optional[float] = None, *,
        dataset: str = "", detach: bool, loss_name: str = "",
    ) -> Union[EvaluationReport, EvaluationHandle]: ...

    def evaluate_embeddings(
        self,
        train: Optional[Labelled] = None,
        test: Optional[Labelled] = None,
        test_positive: Optional[Any] = None,
        spec: SpecLike = None,
        name: str = "embeddings",
        loss: str = "",
        temperature: Optional[float] = None,
        *,
        dataset: str = "",
        detach: bool = False,
        loss_name: str = "",
    ) -> Union[EvaluationReport, EvaluationHandle]:
        """Evaluates embeddings computed by the client.

        Args:
            train: ``(embeddings [n, d], labels [n])``: the kNN bank and the
                probe's training set (without it, no kNN or probe).
            test: ``(embeddings [m, d], labels [m])``: the rows measured.
            test_positive: ``[m, d]``: a positive view of each test row, in
                order (for alignment and the positive similarity).
            spec: as in :meth:`evaluate`.
            name, loss, dataset: recorded in the report. A `loss` given is
                one of the names :meth:`register_model` takes (others are
                :class:`~embedeval.errors.InvalidArgument`).
            loss_name: the name of a loss of your own, with ``loss="other"``.
            temperature: the training tau, used by the penalty profile when
                the spec has no ``penalty_temperature``.
            detach: answer at once with an :class:`EvaluationHandle`.

        The rows are L2-normalised by the server; they are sent in chunks,
        each converted to float32 as it goes. Any array, embeddings or
        labels, may be given as the path of a ``.npy`` file: it is
        memory-mapped (``numpy.load(path, mmap_mode="r")``), not read, so
        features larger than the client's memory stream from disk
        (``np.load(..., mmap_mode="r")`` arrays are used in place too).
        """
        if test is None:
            raise ValueError("test=(embeddings, labels) is required")
        parts: List[Tuple[str, npt.NDArray[Any], Optional[Labels]]] = []
        test_x = _float_rows(test[0], "test embeddings")
        parts.append(("test", test_x, _labels(test[1], test_x.shape[0], "test labels")))
        if test_positive is not None:
            pos = _float_rows(test_positive, "test_positive")
            if pos.shape != test_x.shape:
                raise ValueError(f"test_positive is {list(pos.shape)} but test is {list(test_x.shape)}")
            parts.append(("test_positive", pos, None))
        if train is not None:
            train_x = _float_rows(train[0], "train embeddings")
            if train_x.shape[1] != test_x.shape[1]:
                raise ValueError(f"train rows have dimension {train_x.shape[1]}, test rows {test_x.shape[1]}")
            parts.append(("train", train_x, _labels(train[1], train_x.shape[0], "train labels")))
        header = evaluation_pb2.EmbeddingsHeader(
            name=name, spec=spec_to_proto(spec), loss=loss, loss_name=loss_name, dataset=dataset, detach=detach
        )
        if temperature is not None:
            header.temperature = float(temperature)

        requests = embeddings_requests(header, parts)
        report = EvaluationReport.from_proto(self._call(self._evaluation.EvaluateEmbeddings, requests))
        if detach:
            return EvaluationHandle(self, Accepted(evaluation_ids=[report.id], status=report.status))
        return report

    # As evaluate's: the comparison, or with detach=True its handle.
    @overload
    def compare(
        self, models: Optional[Sequence[str]] = None, dataset: str = "", spec: SpecLike = None, test_split: str = "",
        train_split: str = "", progress: bool = True, detach: Literal[False] = False, *,
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> Comparison: ...

    @overload
    def compare(
        self, models: Optional[Sequence[str]] = None, dataset: str = "", spec: SpecLike = None, test_split: str = "",
        train_split: str = "", progress: bool = True, *, detach: Literal[True],
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> ComparisonHandle: ...

    @overload
    def compare(
        self, models: Optional[Sequence[str]], dataset: str, spec: SpecLike, test_split: str,
        train_split: str, progress: bool, detach: Literal[True], *,
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> ComparisonHandle: ...

    @overload
    def compare(
        self, models: Optional[Sequence[str]] = None, dataset: str = "", spec: SpecLike = None, test_split: str = "",
        train_split: str = "", progress: bool = True, detach: bool = False, *,
        on_progress: Optional[ProgressCallback] = None, augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None, by: str = "",
    ) -> Union[Comparison, ComparisonHandle]: ...

    def compare(
        self,
        models: Optional[Sequence[str]] = None,
        dataset: str = "",
        spec: SpecLike = None,
        test_split: str = "",
        train_split: str = "",
        progress: bool = True,
        detach: bool = False,
        *,
        on_progress: Optional[ProgressCallback] = None,
        augmentation: Optional[AugmentationLike] = None,
        positives_split: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
        by: str = "",
    ) -> Union[Comparison, ComparisonHandle]:
        """Evaluates several models (``None``: every model) on `dataset`.

        Returns a :class:`~embedeval.types.Comparison` (``.rows``, one report
        per model evaluated; ``.excluded``, the models left out, each an
        :class:`~embedeval.types.ExcludedModel` with its ``kind``: "does not
        fit" for a model whose input does not take the dataset's images,
        "duplicate" for one with the same ONNX file and preprocessing as
        its ``same_as``; ``.plot_svg`` and ``.accuracy_plot_svg``;
        ``.to_pandas()``; ``.recommendations``, which tau to keep per loss,
        each a :class:`~embedeval.types.Recommendation`, and
        ``.recommend(loss)``; ``.id``, under which it is stored: see
        :meth:`get_comparison` and :meth:`render_figure`), or a
        :class:`ComparisonHandle` (``.comparison_id``, ``.excluded``) with
        `detach`. Other arguments, `augmentation` and `positives_split`
        among them, as in :meth:`evaluate`. Sweeps are read along the
        models' tags (``ModelInfo.tags``):

        Args:
            tags: only the models that have every one of these tags with
                these values (as :meth:`list_models` filters): among every
                model when `models` is ``None``, else among those named.
                :class:`~embedeval.errors.InvalidArgument` when none has them.
            by: aggregate over this tag (e.g. ``"seed"``): the models that
                share every other tag (and their loss and tau) form a group,
                and ``Comparison.groups`` holds one
                :class:`~embedeval.types.TagGroup` per group, in the order of
                its first row, with the mean, sample standard deviation and
                95% Student-t interval of the mean of each metric over its
                COMPLETED models (``Comparison.groups_to_pandas()``). A
                detached comparison's handle asks for the same groups when
                it waits.
        """
        if not dataset:
            raise ValueError("compare needs a dataset")
        if isinstance(models, str):
            models = [models]
        if not isinstance(by, str):
            raise TypeError(f"by must be a tag name, got {type(by).__name__}")
        request = evaluation_pb2.CompareRequest(
            models=list(models or []),
            dataset=dataset,
            spec=_spec_with(spec, augmentation, positives_split),
            detach=detach,
            test_split=test_split,
            train_split=train_split,
            tags=_toml.check_tags(tags),
            by=by,
        )
        events = self._stream(self._evaluation.Compare, request)
        try:
            if detach:
                for event in events:
                    if event.HasField("accepted"):
                        return ComparisonHandle(self, Accepted.from_proto(event.accepted), by=by)
                raise Internal("the server ended a detached Compare without accepting it")
            with ProgressDisplay(progress, on_progress) as display:
                for event in events:
                    kind = event.WhichOneof("event")
                    if kind == "progress":
                        display.update(Progress.from_proto(event.progress))
                    elif kind == "comparison":
                        return Comparison.from_proto(event.comparison)
            raise Internal("the server ended the stream without a comparison")
        finally:
            events.close()

    def list_comparisons(self, dataset: str = "", limit: int = 0) -> List[ComparisonSummary]:
        """The stored comparisons, newest first (on `dataset` only, when
        given): id, dataset, when, the models of each and the short content
        ids of the dataset versions its rows were made on. All of them,
        page by page, or at most `limit`."""
        out: List[ComparisonSummary] = []
        token = ""
        while True:
            page = self._call(
                self._evaluation.ListComparisons,
                evaluation_pb2.ListComparisonsRequest(dataset=dataset, page_size=0, page_token=token),
                idempotent=True,
            )
            out.extend(ComparisonSummary.from_proto(c) for c in page.comparisons)
            token = page.next_page_token
            if not token or (limit and len(out) >= limit):
                return out[:limit] if limit else out

    def delete_comparison(self, id: str) -> None:
        """Removes a stored comparison (its evaluations stay: they are
        reports of their own). Raises :class:`~embedeval.errors.NotFound`
        for an unknown id."""
        if not isinstance(id, str) or not id:
            raise ValueError("the comparison id must be a non-empty string")
        self._call(self._evaluation.DeleteComparison, evaluation_pb2.DeleteComparisonRequest(id=id))

    def get_comparison(self, id: str, by: str = "") -> Comparison:
        """A stored comparison by id: its rows as they are now (a detached
        one may still be running), with its two plots drawn again and its
        recommendations worked out again from those rows; with `by` (a tag,
        e.g. ``"seed"``), its ``groups`` along that tag, as
        :meth:`compare` gives them (any tag, whatever the comparison was
        made with)."""
        if not isinstance(by, str):
            raise TypeError(f"by must be a tag name, got {type(by).__name__}")
        request = evaluation_pb2.GetComparisonRequest(id=id, by=by)
        return Comparison.from_proto(self._call(self._evaluation.GetComparison, request, idempotent=True))

    def render_figure(
        self,
        id: str,
        kind: str = "ut",
        format: str = "svg",
        size: str = "screen",
        x: str = "",
        group_by: str = "",
        label: str = "",
    ) -> Figure:
        """Draws a figure of a stored comparison (`id`: a comparison id, its
        completed rows) or of one evaluation (an evaluation id) from the
        stored reports, without recomputing anything.

        Args:
            kind: ``"ut"`` (uniformity against tolerance, Wang & Liu Figs.
                4-7), ``"accuracy"`` (kNN and linear top-1 against tau),
                ``"negatives"`` (the positive against the nearest negatives,
                Fig. 8), ``"penalty"`` (the relative penalty over the
                nearest negatives, Fig. 3), ``"classes"`` (each class's
                tolerance against tau), ``"confusion"`` (which classes each
                class's k nearest other rows come from, at the smallest and
                largest tau) or ``"pareto"`` (the uniformity-tolerance Pareto
                front of each loss, its knee and the recommended model).
            format: ``"svg"`` or ``"png"``.
            size: ``"screen"`` (1280 x 860 px) or ``"column"`` (a paper
                column at 300 dpi, 1050 x 840 px).
            x: the accuracy figure's x axis: ``"temperature"`` (the default,
                ``""``: tau on a log axis, the tau-free losses at infinity)
                or a tag with numeric values on a linear axis, e.g.
                ``"seed"``, ``"epochs"``, ``"step"`` (the models without a
                numeric value of it are left out, and said so on the
                figure). Several models of one colour at one x are drawn as
                their mean with the 95% t-interval across them, each model
                faint behind it.
            group_by: the accuracy figure's colours: ``"loss"`` (the
                default, ``""``) or a tag, one colour per value (``"-"``
                for the models without it).
            label: what labels each point of the uniformity-tolerance
                figure: ``"temperature"`` (the default, ``""``), ``"name"``
                (the model) or a tag's value; the models of one tau are
                joined through their centroid.

        Returns the :class:`~embedeval.types.Figure` (``.save(path)``).
        Other names of kind, format and size raise ValueError without a
        call; an unknown id raises :class:`~embedeval.errors.NotFound`, and
        ids with nothing the figure needs
        :class:`~embedeval.errors.FailedPrecondition` (so does an `x` tag
        that no model has a numeric value of). `x` or `group_by`
        other than their defaults on another kind than ``"accuracy"``,
        `label` other than its default on another kind than ``"ut"``, or
        a name that is no tag key, raise
        :class:`~embedeval.errors.InvalidArgument` from the server.
        """
        request = figure_request(id, kind, format, size, x, group_by, label)
        return Figure.from_proto(self._call(self._evaluation.RenderFigure, request, idempotent=True))

    def list_runs(self) -> List[RunSummary]:
        """Every training run (the models whose cards name a run), sorted by
        name: its number of checkpoints, first and last step, and the loss
        and tau of its latest checkpoint."""
        r = self._call(self._evaluation.ListRuns, evaluation_pb2.ListRunsRequest(), idempotent=True)
        return [RunSummary.from_proto(s) for s in r.runs]

    def get_run(self, name: str, dataset: str) -> Run:
        """Run `name` on `dataset`: its checkpoints in step order, each with
        its latest COMPLETED report on the dataset (of exactly that
        checkpoint: same sha256; ``None`` before it is evaluated), and the
        warnings its path raises (``"dimensional_collapse"``,
        ``"complete_collapse"``, ``"small_tau"``, each with the step where it
        began). ``.to_pandas()`` gives one row per checkpoint. An unknown
        run raises :class:`~embedeval.errors.NotFound`."""
        if not dataset:
            raise ValueError("get_run needs the dataset whose reports to show")
        return Run.from_proto(
            self._call(
                self._evaluation.GetRun, evaluation_pb2.GetRunRequest(name=name, dataset=dataset), idempotent=True
            )
        )

    def get_evaluation(self, id: str) -> EvaluationReport:
        """An evaluation's report as it is now (also while QUEUED or RUNNING)."""
        return EvaluationReport.from_proto(
            self._call(self._evaluation.GetEvaluation, evaluation_pb2.GetEvaluationRequest(id=id), idempotent=True)
        )

    def list_evaluations(
        self, model: str = "", dataset: str = "", limit: Optional[int] = None, *, page_size: int = 0
    ) -> List[EvaluationReport]:
        """Stored evaluations, newest first, of `model` and/or on `dataset`
        (empty: any); at most `limit` (``None``: all, page by page)."""
        out: List[EvaluationReport] = []
        token = ""
        while True:
            size = page_size or (min(limit - len(out), 1000) if limit is not None else 0)
            r = self._call(
                self._evaluation.ListEvaluations,
                evaluation_pb2.ListEvaluationsRequest(model=model, dataset=dataset, page_size=size, page_token=token),
                idempotent=True,
            )
            out.extend(EvaluationReport.from_proto(e) for e in r.evaluations)
            token = r.next_page_token
            if not token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out

    def watch_evaluation(self, id: str) -> Iterator[Union[Progress, EvaluationReport]]:
        """Follows an evaluation: its :class:`~embedeval.types.Progress`
        events, then its report (in whatever status it ended) as the last
        item; for an evaluation that has ended, the report alone."""
        events = self._stream(self._evaluation.WatchEvaluation, evaluation_pb2.WatchEvaluationRequest(id=id))
        try:
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "progress":
                    yield Progress.from_proto(event.progress)
                elif kind == "report":
                    yield EvaluationReport.from_proto(event.report)
                    return
        finally:
            events.close()

    def wait_evaluation(
        self, id: str, progress: bool = False, *, on_progress: Optional[ProgressCallback] = None
    ) -> EvaluationReport:
        """Waits for an evaluation to end (WatchEvaluation); returns its report."""
        with ProgressDisplay(progress, on_progress) as display:
            for item in self.watch_evaluation(id):
                if isinstance(item, Progress):
                    display.update(item)
                else:
                    return item
        raise Internal(f"WatchEvaluation({id}) ended without a report")

    def cancel_evaluation(self, id: str) -> EvaluationStatus:
        """Stops a queued or running evaluation (with the rest of its job);
        returns the status it ended in."""
        r = self._call(self._evaluation.CancelEvaluation, evaluation_pb2.CancelEvaluationRequest(id=id))
        known = r.status in evaluation_pb2.EvaluationStatus.values()
        value = evaluation_pb2.EvaluationStatus.Name(r.status) if known else None
        return EvaluationStatus(value) if value else EvaluationStatus.EVALUATION_STATUS_UNSPECIFIED

    def delete_evaluation(self, id: str) -> None:
        """Removes a stored evaluation that has ended (COMPLETED, FAILED,
        CANCELLED or SKIPPED); comparisons that held it leave it out from
        then on. Raises :class:`~embedeval.errors.FailedPrecondition` for one
        still queued or running (cancel it first) and
        :class:`~embedeval.errors.NotFound` for an unknown id."""
        if not isinstance(id, str) or not id:
            raise ValueError("the evaluation id must be a non-empty string")
        self._call(self._evaluation.DeleteEvaluation, evaluation_pb2.DeleteEvaluationRequest(id=id))


class EvaluationHandle:
    """A detached evaluation: follow it, wait for it, or cancel it.

    Attributes:
        ids: the evaluation ids (one).
        status: its status when it was admitted (QUEUED or RUNNING).
    """

    def __init__(self, client: Client, accepted: Accepted) -> None:
        self._client = client
        self.ids: List[str] = list(accepted.evaluation_ids)
        self.status = accepted.status

    def __repr__(self) -> str:
        status = self.status.value if hasattr(self.status, "value") else self.status
        return f"{type(self).__name__}(ids={self.ids!r}, status={status})"

    @property
    def id(self) -> str:
        """The (first) evaluation id."""
        return self.ids[0]

    def get(self) -> EvaluationReport:
        """The report as it is now."""
        return self._client.get_evaluation(self.id)

    def watch(self) -> Iterator[Union[Progress, EvaluationReport]]:
        """Progress events, then the report as the last item."""
        return self._client.watch_evaluation(self.id)

    def wait(self, progress: bool = False, *, on_progress: Optional[ProgressCallback] = None) -> EvaluationReport:
        """Waits until the evaluation ends; returns its report."""
        return self._client.wait_evaluation(self.id, progress, on_progress=on_progress)

    def cancel(self) -> EvaluationStatus:
        """Cancels the evaluation; returns the status it ended in."""
        return self._client.cancel_evaluation(self.id)


class ComparisonHandle:
    """A detached comparison: one evaluation id per model, in the order of
    the request.

    Attributes:
        ids: the evaluation ids.
        status: the job's status when it was admitted (QUEUED or RUNNING).
        comparison_id: the comparison's id (:meth:`Client.get_comparison`,
            :meth:`Client.render_figure`); empty from a server older than it.
        excluded: the models the comparison left out, with why
            (:class:`~embedeval.types.ExcludedModel`; no ids for them).
        by: the tag :meth:`wait` asks the stored comparison's groups along
            (``compare(..., by=...)``; "" for none).
    """

    def __init__(self, client: Client, accepted: Accepted, by: str = "") -> None:
        self._client = client
        self.ids: List[str] = list(accepted.evaluation_ids)
        self.status = accepted.status
        self.comparison_id: str = accepted.comparison_id
        self.excluded: List[ExcludedModel] = list(accepted.excluded)
        self.by = by

    def __repr__(self) -> str:
        return f"{type(self).__name__}(comparison_id={self.comparison_id!r}, ids={self.ids!r})"

    def get(self) -> List[EvaluationReport]:
        """The reports as they are now."""
        return [self._client.get_evaluation(i) for i in self.ids]

    def watch(self) -> Iterator[Union[Progress, EvaluationReport]]:
        """Each evaluation's progress and report in turn."""
        for i in self.ids:
            yield from self._client.watch_evaluation(i)

    def wait(self, progress: bool = False, *, on_progress: Optional[ProgressCallback] = None) -> Comparison:
        """Waits until every evaluation ends; returns the stored
        :class:`~embedeval.types.Comparison` (:meth:`Client.get_comparison`:
        its ``id``, the rows sorted as by :meth:`Client.compare`, the plots,
        the groups along :attr:`by`). From a server without comparison ids:
        the reports in the order of the request, without plots."""
        rows = [self._client.wait_evaluation(i, progress, on_progress=on_progress) for i in self.ids]
        if self.comparison_id:
            return self._client.get_comparison(self.comparison_id, by=self.by)
        return Comparison(rows=rows, excluded=list(self.excluded))

    def cancel(self) -> List[EvaluationStatus]:
        """Cancels the comparison; returns each evaluation's final status."""
        out = []
        for i in self.ids:
            try:
                out.append(self._client.cancel_evaluation(i))
            except EmbedevalError:
                out.append(self._client.get_evaluation(i).status)
        return out
