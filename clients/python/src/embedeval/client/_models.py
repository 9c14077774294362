"""ModelService calls of the client: list, get, upload (register), delete
and rename models (the mixin :class:`_Models` of
:class:`~embedeval.client.Client`)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from .. import _toml
from .._proto import model_pb2
from .._upload import PathLike, model_requests
from ..types import ModelInfo, ModelList, SkippedModel
from ._connection import _check_name, _Connection


class _Models(_Connection):
    """The ModelService calls of :class:`~embedeval.client.Client`."""

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
