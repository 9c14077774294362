"""Logging to TensorBoard event files (``pip install
'embedeval-client[tensorboard]'``): with the ``tensorboard`` package alone,
or through a SummaryWriter."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import (
    Any,
    Optional,
    Union,
)

from ._entry import LogEntry, _edges, _png_size, _Steps


def _import_tensorboard() -> Any:
    try:
        from tensorboard.compat.proto import summary_pb2
    except ImportError as e:
        raise ImportError(
            "logging to TensorBoard needs tensorboard: pip install 'embedeval-client[tensorboard]'"
        ) from e
    return summary_pb2


#: PNG colour type to TensorBoard's colorspace (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
_COLORSPACES = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class TensorBoardTracker(_Steps):
    """Writes TensorBoard event files into `logdir` with the ``tensorboard``
    package alone, or through a ``torch.utils.tensorboard.SummaryWriter``
    (or tensorboardX's) given instead of a directory.

    Scalars are ``simple_value`` summaries (float32) at the step, histograms
    histogram summaries, figures image summaries (the PNG as it is), the
    config a markdown table (text tag ``<prefix>config``) at each step, and
    the first entry's settings the run's hparams (the HParams dashboard;
    :data:`PER_EVALUATION_KEYS` left out). Each entry is flushed to disk."""

    def __init__(self, logdir: Union[str, os.PathLike[str], Any]) -> None:
        super().__init__()
        self._pb = _import_tensorboard()
        self._own: Any = None
        self._writer: Any = None
        self._convert: Any = None
        if isinstance(logdir, (str, os.PathLike)):
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self.logdir: Optional[Path] = Path(logdir)
            self._own = EventFileWriter(str(self.logdir), flush_secs=5)
        elif hasattr(logdir, "_get_file_writer"):  # torch's or tensorboardX's SummaryWriter
            self.logdir = Path(logdir.log_dir) if hasattr(logdir, "log_dir") else None
            self._writer = logdir
            if type(logdir).__module__.split(".")[0] == "tensorboardX":
                from tensorboardX.proto import summary_pb2 as tbx_summary

                self._convert = lambda s: tbx_summary.Summary.FromString(s.SerializeToString())
        else:
            raise TypeError(
                f"TensorBoardTracker takes a log directory or a SummaryWriter, got {type(logdir).__name__}"
            )
        self._hparams_written = False
        self._closed = False

    def _emit(self, summary: Any, step: int, wall_time: float) -> None:
        if self._own is not None:
            from tensorboard.compat.proto import event_pb2

            self._own.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))
        else:
            file_writer = self._writer._get_file_writer()
            if self._convert is not None:
                summary = self._convert(summary)
            file_writer.add_summary(summary, step, wall_time)

    def _text(self, tag: str, text: str) -> Any:
        from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorboard.plugins.text import metadata as text_metadata

        pb = self._pb
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            string_val=[text.encode("utf-8")],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        )
        meta = text_metadata.create_summary_metadata(display_name=tag, description="")
        return pb.Summary.Value(tag=tag, metadata=meta, tensor=tensor)

    def _hparams(self, entry: LogEntry) -> Optional[Any]:
        from tensorboard.plugins.hparams import metadata as hp_metadata
        from tensorboard.plugins.hparams import plugin_data_pb2

        info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for key, value in entry.config.items():
            if entry.is_per_evaluation(key):
                continue
            if isinstance(value, bool):
                info.hparams[key].bool_value = value
            elif isinstance(value, (int, float)):
                info.hparams[key].number_value = float(value)
            else:
                info.hparams[key].string_value = str(value)
        if not info.hparams:
            return None
        meta = hp_metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_start_info=info))
        return self._pb.Summary.Value(
            tag=hp_metadata.SESSION_START_INFO_TAG, metadata=meta, tensor=hp_metadata.NULL_TENSOR
        )

    def log(self, entry: LogEntry) -> None:
        if self._closed:
            raise RuntimeError("the TensorBoardTracker is closed")
        step = self._step(entry.step)
        pb = self._pb
        wall_time = time.time()
        values = [pb.Summary.Value(tag=name, simple_value=value) for name, value in entry.scalars.items()]
        for name, h in entry.histograms.items():
            edges = _edges(h)
            centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
            counts = [float(c) for c in h.counts]
            histo = pb.HistogramProto(
                min=float(h.lo),
                max=float(h.hi),
                num=float(sum(counts)),
                sum=float(sum(c * x for c, x in zip(counts, centres))),
                sum_squares=float(sum(c * x * x for c, x in zip(counts, centres))),
                bucket_limit=edges[1:],
                bucket=counts,
            )
            values.append(pb.Summary.Value(tag=name, histo=histo))
        for name, png in entry.figures.items():
            width, height, colour = _png_size(png)
            image = pb.Summary.Image(
                height=height, width=width, colorspace=_COLORSPACES.get(colour, 3), encoded_image_string=png
            )
            values.append(pb.Summary.Value(tag=name, image=image))
        if entry.config:
            rows = "\n".join(
                f"| {key} | {str(value).replace('|', '&#124;')} |" for key, value in sorted(entry.config.items())
            )
            values.append(self._text(f"{entry.prefix}config", f"| setting | value |\n|---|---|\n{rows}"))
            if not self._hparams_written:
                hparams = self._hparams(entry)
                if hparams is not None:
                    values.append(hparams)
                self._hparams_written = True
        if values:
            self._emit(pb.Summary(value=values), step, wall_time)
        self.flush()

    def flush(self) -> None:
        """Writes what is buffered to disk."""
        if self._own is not None:
            self._own.flush()
        elif self._writer is not None and hasattr(self._writer, "flush"):
            self._writer.flush()

    def close(self) -> None:
        """Flushes; closes the event file this tracker opened (a
        SummaryWriter you passed stays open)."""
        if self._closed:
            return
        self.flush()
        if self._own is not None:
            self._own.close()
        self._closed = True
