"""A figure of a stored comparison or evaluation, drawn by the server."""
from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path
from typing import (
    Any,
    Dict,
    List,
    Optional,
    Union,
)

from ._base import _Message

#: File extension to media type, for :meth:`Figure.save`.
_MEDIA_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


@dataclasses.dataclass
class Figure(_Message):
    """A figure of a stored comparison or evaluation, drawn by the server
    (``client.render_figure``): an SVG or PNG file. :meth:`save` writes it;
    in Jupyter it shows itself."""

    _proto_name = "embedeval.v1.Figure"

    #: The file: SVG text (UTF-8) or PNG.
    data: bytes = dataclasses.field(default=b"", repr=False)
    #: "image/svg+xml" or "image/png".
    media_type: str = ""
    #: Size in pixels.
    width: int = 0
    height: int = 0
    #: The evaluations drawn (the COMPLETED ones of the id).
    evaluation_ids: List[str] = dataclasses.field(default_factory=list)
    #: The data marks drawn (models, or models x probes, or models x ranks).
    marks: int = 0

    @property
    def format(self) -> str:
        """The file's format by the name ``render_figure`` takes: "svg" or "png"."""
        return "png" if self.media_type == "image/png" else "svg"

    def save(self, path: Union[str, os.PathLike[str]]) -> Path:
        """Writes the file to `path`; returns it. A path ending in .svg or
        .png must match the figure's format (ValueError otherwise)."""
        out = Path(path)
        expected = _MEDIA_TYPES.get(out.suffix.lower())
        if expected is not None and self.media_type and expected != self.media_type:
            raise ValueError(
                f"{out.name} names a {out.suffix.lower()[1:]} file but the figure is {self.media_type}: "
                f"render it with format={out.suffix.lower()[1:]!r}"
            )
        out.write_bytes(self.data)
        return out

    def _repr_svg_(self) -> Optional[str]:
        return self.data.decode("utf-8") if self.media_type == "image/svg+xml" else None

    def _repr_png_(self) -> Optional[bytes]:
        return self.data if self.media_type == "image/png" else None

    def to_dict(self) -> Dict[str, Any]:
        """As :meth:`_Message.to_dict`, with ``data`` as base64 (the JSON
        mapping of protobuf bytes)."""
        d = super().to_dict()
        d["data"] = base64.b64encode(self.data).decode("ascii")
        return d
