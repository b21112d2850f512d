"""Typed parameters of the evaluation and describe pipelines."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from product_descgen.evaluation.metrics import MetricsParams
from product_descgen.llm.types import GenerationSettings
from product_descgen.quality.checks import GateParams


class Machine(BaseModel):
    """A machine a system can be served on, with its price (for cost per description) and the
    memory its serving process may use (GiB; none: any process fits) and its GPU's memory
    (GiB; none: no GPU)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    price_per_hour: PositiveFloat
    memory_gb: PositiveFloat | None = None
    gpu_memory_gb: PositiveFloat | None = None
    currency: str = "USD"


class SpeedParams(BaseModel):
    """Throughput, memory and cost, teacher pipeline vs student, each in its own process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_size: PositiveInt = 64
    warmup_size: int = Field(4, ge=0)  # products served before the clock starts (not measured)
    pairs: PositiveInt = 3  # rounds of both systems, fresh processes, order alternating
    # fewer measured products: the run warns and the report calls the speed, memory and cost
    # figures indicative (a few products in flight at once do not show the steady rate)
    min_products: PositiveInt = 64
    seed: int = 0
    # each system is priced on the cheapest of these that holds its serving process's peak
    machines: list[Machine] = Field(min_length=1)
    timeout_s: PositiveInt = 3600  # per system


class HumanEvalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_items: PositiveInt = 50
    seed: int = 7
    confidence: float = Field(0.95, gt=0, lt=1)
    min_judgments: PositiveInt = 30  # fewer: the report shows no preference headline


class JudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    generation: GenerationSettings = GenerationSettings(max_new_tokens=4)
    # below either floor the judge's preference is reported as unreliable, not headlined
    min_valid: PositiveInt = 20  # products on which both orders' answers picked a side
    min_position_consistency: float = Field(0.6, ge=0, le=1)


class EvaluationParams(BaseModel):
    """All evaluation settings (see conf/base/parameters_evaluation.yml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_generation: GenerationSettings = GenerationSettings(max_new_tokens=160)
    baseline_generation: GenerationSettings = GenerationSettings(max_new_tokens=240)
    metrics: MetricsParams = MetricsParams()
    human_eval: HumanEvalParams = HumanEvalParams()
    judge: JudgeParams = JudgeParams()
    speed: SpeedParams
    min_test_items: PositiveInt = 30  # fewer: the run warns and the report calls figures indicative
    progress: bool = True


class DescribeParams(BaseModel):
    """The describe pipeline: new products -> student descriptions, each checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gate: GateParams = GateParams()
    embedding_model: str | None = None  # the off-product check's embedder (globals)
    progress: bool = True
