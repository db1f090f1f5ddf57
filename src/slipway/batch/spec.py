"""What a batch transform job scores, with which model, and where the predictions go."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slipway.core import uris
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name

QUEUE = "batch"
CHUNK_KIND = "batch.chunk"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
FORMATS = ("parquet", "csv", "jsonl")


def check_uri(value: str, *, field: str) -> str:
    """:func:`slipway.core.uris.check_uri` for pydantic validators (which want ValueError)."""
    try:
        return uris.check_uri(value, field=field)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def format_of(path: str, given: str | None) -> str:
    if given:
        return given
    name = path.lower().rstrip("/")
    suffixes = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
                ".ndjson": "jsonl", ".json": "jsonl"}  # fmt: skip
    for suffix, kind in suffixes.items():
        if name.endswith(suffix):
            return kind
    return "parquet"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesInput(_Spec):
    """Parquet, CSV or JSON-lines files: a path, a folder or a glob, on any fsspec URI."""

    path: str
    format: Literal["parquet", "csv", "jsonl"] | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_uri(value, field="input.files.path")


class QueryInput(_Spec):
    """SQL over feature groups (each group is a table named after it)."""

    sql: str = Field(min_length=1, max_length=100_000)


class TrainingSetInput(_Spec):
    """A point-in-time training set: entity rows from a file plus features as of each row."""

    entities: str
    features: list[str] = Field(min_length=1)
    timestamp_column: str = "event_time"

    @field_validator("entities")
    @classmethod
    def _entities(cls, value: str) -> str:
        return check_uri(value, field="input.training_set.entities")


class Input(_Spec):
    files: FilesInput | None = None
    query: QueryInput | None = None
    training_set: TrainingSetInput | None = None

    @model_validator(mode="after")
    def _one(self) -> Input:
        given = [k for k in ("files", "query", "training_set") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of files, query, training_set")
        return self


class FilesOutput(_Spec):
    path: str = Field(description="a folder; parts are written into it")
    format: Literal["parquet", "csv", "jsonl"] = "parquet"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_uri(value, field="output.files.path")


class KafkaOutput(_Spec):
    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    delivery_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)


class Output(_Spec):
    files: FilesOutput | None = None
    kafka: KafkaOutput | None = None

    @model_validator(mode="after")
    def _one(self) -> Output:
        if (self.files is None) == (self.kafka is None):
            raise ValueError("give exactly one of files, kafka")
        return self


class BatchJobSpec(_Spec):
    """A batch transform job, SageMaker-style: a model, an input, an output."""

    name: str
    model: str = Field(description="registry reference: name:version or name@alias")
    environment: str = "staging"
    input: Input
    output: Output
    id_column: str | None = Field(
        default=None, validate_default=True, description="record id (the Kafka key)"
    )
    keep_columns: list[str] = Field(
        default_factory=list, description="input columns written beside the predictions"
    )
    prediction_column: str = "prediction"
    explain: StrictBool = Field(
        default=False,
        description="add SHAP attributions: a <feature>_shap column per feature and"
        " base_value (explained_class too, for a multiclass model)",
    )
    chunk_rows: int = Field(default=250_000, ge=1_000, le=10_000_000)
    retries: int = Field(default=2, ge=0, le=20)

    @field_validator("name", "environment")
    @classmethod
    def _names(cls, value: str) -> str:
        return validate_name(value, field="name")

    @field_validator("id_column")
    @classmethod
    def _id_column(cls, value: str | None, info: ValidationInfo) -> str | None:
        output = info.data.get("output")
        if output is not None and output.kafka is not None and not value:
            raise ValueError("a Kafka output needs id_column: it is each message's key")
        return value

    def kept(self) -> list[str]:
        """The input columns copied to the output, the id first."""
        columns = [self.id_column] if self.id_column else []
        return columns + [c for c in self.keep_columns if c not in columns]
