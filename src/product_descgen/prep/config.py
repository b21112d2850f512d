"""Typed parameters of the data_prep pipeline (``conf/base/parameters_data_prep.yml``).

Kedro validates a node's ``params:`` input against these models before any node runs, so a
typo or an impossible value fails at start-up with a message naming the setting.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Strict):
    """Canonical field -> column name in your catalogue. ``null`` = the catalogue has none.
    ``attribute_columns``: attribute name -> a column of its own that holds it (a shop export's
    ``{Brand: Vendor, Material: Fabric}``), added to those of the ``attributes`` column, or
    the only attributes with ``attributes: null``."""

    product_id: str = "product_id"
    title: str = "title"
    category: str | None = "category"
    attributes: str | None = "attributes"
    description: str | None = "description"
    attribute_columns: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _attributes_somewhere(self) -> ColumnMapping:
        if self.attributes is None and not self.attribute_columns:
            raise ValueError(
                "attributes: null leaves products without attributes: name the columns that "
                "hold them in attribute_columns (attribute name: column, e.g. {Brand: Vendor})"
            )
        return self

    def mapped(self) -> dict[str, str]:
        """Every column read: each canonical field's, then each attribute column (under
        ``attribute 'Brand'``)."""
        fields = self.model_dump(exclude={"attribute_columns"})
        named = {f"attribute {name!r}": column for name, column in self.attribute_columns.items()}
        return {field: column for field, column in fields.items() if column is not None} | named


class AttributeFormat(_Strict):
    """How attributes are written: a mapping, or a list of {key_field: .., value_field: ..}."""

    key_field: str = "key"
    value_field: str = "value"
    unnamed_key: str = Field(
        "Other details", description="key given to attribute values whose key is null or empty"
    )


class Limits(_Strict):
    """Bounds beyond which a row is quarantined rather than used."""

    max_title_chars: PositiveInt = 300
    max_description_chars: PositiveInt = 20_000
    min_attributes: int = Field(1, ge=0)
    default_category: str = "Uncategorised"
    # a stage (ingest, clean, length filter) keeping less than this share of its rows fails
    min_kept_share: float = Field(0.25, ge=0.0, le=1.0)


class CleaningParams(_Strict):
    """Text cleaning. Patterns are regular expressions (case-insensitive); ``{title}`` in a
    pattern stands for the product's own title."""

    boilerplate_patterns: list[str] = Field(default_factory=list)
    strip_title_prefix: bool = True
    dedupe_sentences: bool = True

    @field_validator("boilerplate_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern.replace("{title}", "x"))
            except re.error as err:
                raise ValueError(
                    f"boilerplate pattern {pattern!r} is not a valid regex: {err}"
                ) from None
        return patterns


class AudienceParams(_Strict):
    """Target audience written into each model input: per category, else the default."""

    default: str = "online shoppers"
    per_category: dict[str, str] = Field(default_factory=dict)


class LengthFilterParams(_Strict):
    """Keep an example only if input tokens + output budget fit ``max_tokens`` (student)."""

    max_tokens: PositiveInt = 1024
    output_token_budget: PositiveInt = 320

    @model_validator(mode="after")
    def _budget_fits(self) -> LengthFilterParams:
        if self.output_token_budget >= self.max_tokens:
            raise ValueError(
                f"output_token_budget ({self.output_token_budget}) must be below "
                f"max_tokens ({self.max_tokens})"
            )
        return self


class SplitParams(_Strict):
    """Shares of the train/validation/test split (stratified by category) and its seed."""

    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, gt=0, lt=1)
    seed: int = 42

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitParams:
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"split shares train+validation+test must sum to 1, got {total:g}")
        return self


class DataPrepParams(_Strict):
    """All data_prep settings."""

    columns: ColumnMapping = ColumnMapping()
    attributes: AttributeFormat = AttributeFormat()
    limits: Limits = Limits()
    cleaning: CleaningParams = CleaningParams()
    audience: AudienceParams = AudienceParams()
    length_filter: LengthFilterParams = LengthFilterParams()
    split: SplitParams = SplitParams()
