"""The contract's enums (``embedeval.v1.DataType``, ``EvaluationStatus``) as
:class:`enum.Enum` members whose value is the proto name."""
from __future__ import annotations

import enum
from typing import (
    Dict,
    Type,
)


class DataType(str, enum.Enum):
    """Element type of a tensor (``embedeval.v1.DataType``)."""

    DATA_TYPE_UNSPECIFIED = "DATA_TYPE_UNSPECIFIED"
    FLOAT32 = "FLOAT32"
    UINT8 = "UINT8"
    INT64 = "INT64"

    def __str__(self) -> str:
        return self.value


class EvaluationStatus(str, enum.Enum):
    """Where an evaluation is (``embedeval.v1.EvaluationStatus``)."""

    EVALUATION_STATUS_UNSPECIFIED = "EVALUATION_STATUS_UNSPECIFIED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: Made by earlier servers for a model of a comparison that did not take
    #: the dataset's images (the report's ``error`` says why); comparisons now
    #: list such models in :attr:`Comparison.excluded` and store no report.
    SKIPPED = "SKIPPED"

    def __str__(self) -> str:
        return self.value

    @property
    def ended(self) -> bool:
        """Whether the evaluation has ended (it will not change any more)."""
        return self in (
            EvaluationStatus.COMPLETED,
            EvaluationStatus.FAILED,
            EvaluationStatus.CANCELLED,
            EvaluationStatus.SKIPPED,
        )


_ENUMS: Dict[str, Type[enum.Enum]] = {
    "embedeval.v1.DataType": DataType,
    "embedeval.v1.EvaluationStatus": EvaluationStatus,
}
