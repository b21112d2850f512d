"""Typed parameters of the teacher_generation pipeline."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from product_descgen.llm.types import GenerationSettings
from product_descgen.quality.checks import GateParams


class Rules(BaseModel):
    """Format rules the refine step asks for (rendered into the prompt as ``rules``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: PositiveInt = 50
    max_words: PositiveInt = 150
    max_paragraphs: PositiveInt = 2


class TeacherParams(BaseModel):
    """All teacher_generation settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_examples: PositiveInt = Field(1000, description="products sent to the teacher, all splits")
    seed: int = 42
    rules: Rules = Rules()
    draft: GenerationSettings = GenerationSettings()
    refine: GenerationSettings = GenerationSettings()
    gate: GateParams = GateParams()
    embedding_model: str | None = None  # the off-product check's embedder (globals)
    # fewer accepted outputs than this share fails the gate's node, with the reasons counted
    min_accepted_share: float = Field(0.1, ge=0.0, le=1.0)
    progress: bool = True

    @model_validator(mode="after")
    def _gate_admits_rules(self) -> TeacherParams:
        if self.gate.min_words > self.rules.min_words or self.gate.max_words < self.rules.max_words:
            raise ValueError(
                f"gate word range [{self.gate.min_words}, {self.gate.max_words}] must contain the "
                f"rules' range [{self.rules.min_words}, {self.rules.max_words}]"
            )
        return self
