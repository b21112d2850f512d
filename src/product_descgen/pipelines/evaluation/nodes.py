"""evaluation nodes: thin adapters over :mod:`product_descgen.evaluation`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.evaluation import cost, judge, metrics, preference, speed
from product_descgen.evaluation.config import EvaluationParams
from product_descgen.evaluation.inference import (
    baseline_requests,
    generate_all,
    results_frame,
    run_student,
    served_student,
)
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.models import ModelsParams, resolve_model_dir, served_model_dir
from product_descgen.prompting import PromptSet
from product_descgen.teacher.config import TeacherParams
from product_descgen.teacher.generate import run_step
from product_descgen.training.config import FinetuneParams
from product_descgen.training.contract import served_prompt

logger = logging.getLogger(__name__)


def build_eval_set(distill_test: pd.DataFrame, test_examples: pd.DataFrame) -> pd.DataFrame:
    """Held-out products with the teacher's accepted description as the reference."""
    if distill_test.empty:
        raise ValueError(
            "the test set is empty: teacher_generation accepted no test products "
            "(raise teacher_generation.max_examples or data_prep.split.test)"
        )
    attributes = test_examples[["product_id", "attributes"]]
    merged = distill_test.merge(attributes, on="product_id", how="left", validate="one_to_one")
    return merged.rename(columns={"target": "reference"})


def describe_with_student(
    eval_set: pd.DataFrame,
    student_adapter: str,
    student_openvino: str,
    student_llm: Connection,
    models: ModelsParams,
    finetune: FinetuneParams,
    params: EvaluationParams,
) -> pd.DataFrame:
    """The fine-tuned student: one inference per product with its short training prompt."""
    base = resolve_model_dir(models.student, models.cache_dir)
    template, settings = served_prompt(
        student_adapter, finetune.prompt_template, params.student_generation
    )
    return run_student(
        eval_set, student_llm, served_student(student_llm, base, student_adapter, student_openvino),
        template, settings, "student", params.progress,
    )  # fmt: skip


def describe_with_base_student(
    eval_set: pd.DataFrame,
    baseline_prompts: dict[str, Any],
    student_llm: Connection,
    models: ModelsParams,
    teacher: TeacherParams,
    params: EvaluationParams,
) -> pd.DataFrame:
    """The student before fine-tuning: one inference with the teacher's instructions."""
    prompts = PromptSet.model_validate(baseline_prompts)
    settings = prompts.with_stop(params.baseline_generation)
    backend = make_backend(
        student_llm, served_model_dir(models.student, models.cache_dir, student_llm), settings
    )
    requests = baseline_requests(eval_set, prompts, teacher.rules.model_dump())
    return results_frame(generate_all(backend, requests, "base student", params.progress))


def _texts(eval_set: pd.DataFrame, outputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table: one row per (system, product) with the text and what scoring needs."""
    base = eval_set[["product_id", "category", "input_text", "attributes", "reference"]]
    parts = [base.assign(system="teacher", text=eval_set["reference"])]
    for system, frame in outputs.items():
        parts.append(
            base.merge(frame[["product_id", "text"]], on="product_id", how="left").assign(
                system=system
            )
        )
    return pd.concat(parts, ignore_index=True)


def score_systems(
    eval_set: pd.DataFrame,
    student_outputs: pd.DataFrame,
    base_student_outputs: pd.DataFrame,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-item scores of every system against the teacher's reference, and their aggregates
    (overall and per category)."""
    texts = _texts(eval_set, {"student": student_outputs, "base_student": base_student_outputs})
    embedder = metrics.load_embedder(params.metrics)
    scores = metrics.score_items(texts, embedder, params.metrics)
    size = {"test_items": len(eval_set), "min_test_items": params.min_test_items,
            "enough": len(eval_set) >= params.min_test_items}  # fmt: skip
    if not size["enough"]:
        logger.warning(
            "Evaluation on %d test products (min_test_items %d): its figures are indicative "
            "only; raise teacher_generation.max_examples or data_prep.split.test",
            len(eval_set), params.min_test_items,
        )  # fmt: skip
    return scores, {**metrics.aggregate(scores, texts, params.metrics), "size": size}


def _pairs(eval_set: pd.DataFrame, student_outputs: pd.DataFrame) -> pd.DataFrame:
    student = student_outputs[["product_id", "text"]].rename(columns={"text": "student"})
    return (
        eval_set[["product_id", "title", "input_text", "reference"]]
        .rename(columns={"reference": "teacher"})
        .merge(student, on="product_id", how="left")
    )


def export_human_eval_kit(
    eval_set: pd.DataFrame, student_outputs: pd.DataFrame, params: EvaluationParams
) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """The blind sheet (CSV), its rating page (HTML) and the unblinding key (kept apart)."""
    sheet, key = preference.build_kit(
        _pairs(eval_set, student_outputs), params.human_eval.n_items, params.human_eval.seed
    )
    return preference.spreadsheet_safe(sheet), preference.render_page(sheet), key


def summarise_human_ratings(
    human_ratings: dict[str, Callable[[], str]],
    human_eval_key: pd.DataFrame,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Raters' files, unblinded: judgments, rejected rows with reasons, and preference shares."""
    files, unreadable = preference.parse_rater_files(human_ratings)
    judgments, rejections = preference.read_ratings(files, human_eval_key)
    rejections = (
        pd.concat([unreadable, rejections], ignore_index=True) if len(unreadable) else rejections
    )
    logger.info(
        "Human ratings: %d files, %d judgments, %d rejected rows",
        len(files), len(judgments), len(rejections),
    )  # fmt: skip
    summary = preference.human_reliability(
        preference.preference_summary(judgments, params.human_eval.confidence),
        params.human_eval.min_judgments,
    )
    return judgments, rejections, {"files": sorted(human_ratings), **summary}


def judge_pairs(
    eval_set: pd.DataFrame,
    student_outputs: pd.DataFrame,
    judge_prompts: dict[str, Any],
    judge_llm: Connection,
    judge_call_store: CallStore,
    models: ModelsParams,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The LLM judge on every (teacher, student) pair, asked in both orders."""
    pairs = _pairs(eval_set, student_outputs).dropna(subset=["teacher", "student"])
    if not params.judge.enabled or pairs.empty:
        empty = preference.judge_verdicts(
            pd.DataFrame(columns=["product_id", "choice"]),
            pd.DataFrame(columns=["product_id", "choice"]),
        )
        summary = preference.judge_summary(empty, params.human_eval.confidence, 1, 0.0)
        return empty, {**summary, "enabled": params.judge.enabled, "reliable": False,
                       "unreliable_because": "the judge did not run"}  # fmt: skip
    prompts = PromptSet.model_validate(judge_prompts)
    settings = prompts.with_stop(params.judge.generation)
    model_dir = served_model_dir(models.judge_spec, models.cache_dir, judge_llm)
    model_id = judge_llm.model if judge_llm.backend == "openai" and judge_llm.model else model_dir
    model_id = f"{model_id}|{judge_llm.serving}"
    answers = {}
    for order in judge.ORDERS:
        requests = judge.judge_requests(pairs, prompts, order, model_id, settings)
        done = run_step(
            requests, lambda: make_backend(judge_llm, model_dir, settings), judge_call_store,
            f"judge-{order}", params.progress,
        )  # fmt: skip
        answers[order] = pd.DataFrame(
            {
                "product_id": pairs["product_id"].to_numpy(),
                "answer": [done.get(r.key, {}).get("text") for r in requests],
            }
        ).assign(choice=lambda f: f["answer"].map(judge.parse_choice))
    verdicts = preference.judge_verdicts(answers["ab"], answers["ba"])
    verdicts = verdicts.merge(
        answers["ab"][["product_id", "answer"]].rename(columns={"answer": "ab_answer"}),
        on="product_id",
    ).merge(
        answers["ba"][["product_id", "answer"]].rename(columns={"answer": "ba_answer"}),
        on="product_id",
    )
    j = params.judge
    summary = preference.judge_summary(
        verdicts, params.human_eval.confidence, j.min_valid, j.min_position_consistency
    )
    summary["judge_model"] = model_id
    return verdicts, summary


def speed_jobs(
    test_examples: pd.DataFrame,
    student_adapter: str,
    student_openvino: str,
    teacher_prompts: dict[str, Any],
    teacher_llm: Connection,
    student_llm: Connection,
    models: ModelsParams,
    teacher: TeacherParams,
    finetune: FinetuneParams,
    params: EvaluationParams,
) -> tuple[speed.SpeedJob, speed.SpeedJob]:
    """The teacher's and the student's speed-test jobs, on the same sample of test products
    and the same warm-up products. Any test product will do (no reference is needed), so both
    are drawn from the whole test split."""
    p = params.speed
    if test_examples.empty:
        raise ValueError("the test split is empty: nothing to measure speed on")
    drawn = test_examples.sample(
        n=min(p.sample_size + p.warmup_size, len(test_examples)), random_state=p.seed
    )
    records = drawn[["product_id", "input_text", "audience"]].to_dict(orient="records")
    n_warm = min(p.warmup_size, len(records) - 1)
    warmup, items = records[:n_warm], records[n_warm:]
    if len(items) < p.sample_size:
        logger.warning(
            "Speed test on %d products (sample_size %d): the test split is small",
            len(items), p.sample_size,
        )  # fmt: skip

    def served(connection: Connection, override: Any) -> Connection:
        return connection.model_copy(update=override.model_dump(exclude_none=True))

    teacher_llm, student_llm = served(teacher_llm, p.teacher), served(student_llm, p.student)
    common = {"items": items, "warmup_items": warmup, "gate": teacher.gate.model_dump()}
    teacher_job = speed.SpeedJob(
        system="teacher", connection=teacher_llm,
        model_dir=served_model_dir(models.teacher, models.cache_dir, teacher_llm),
        prompts=teacher_prompts, rules=teacher.rules.model_dump(),
        draft=teacher.draft, refine=teacher.refine, **common,
    )  # fmt: skip
    model_dir, adapter = served_student(
        student_llm, resolve_model_dir(models.student, models.cache_dir), student_adapter,
        student_openvino,
    )  # fmt: skip
    template, generation = served_prompt(
        student_adapter, finetune.prompt_template, params.student_generation
    )
    student_job = speed.SpeedJob(
        system="student", connection=student_llm, model_dir=model_dir, adapter=adapter,
        template=template, generation=generation, **common,
    )  # fmt: skip
    return teacher_job, student_job


def measure_speed(
    test_examples: pd.DataFrame,
    student_adapter: str,
    student_openvino: str,
    teacher_prompts: dict[str, Any],
    teacher_llm: Connection,
    student_llm: Connection,
    models: ModelsParams,
    teacher: TeacherParams,
    finetune: FinetuneParams,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Teacher pipeline vs student on the same test products: alternated rounds, each system
    in a fresh process; medians over the rounds with their spread."""
    p = params.speed
    jobs = speed_jobs(
        test_examples, student_adapter, student_openvino, teacher_prompts, teacher_llm,
        student_llm, models, teacher, finetune, params,
    )  # fmt: skip
    rounds = speed.summarise_rounds(speed.run_pairs(jobs, p.pairs, p.timeout_s))
    by_system = {row["system"]: row for row in rounds.to_dict(orient="records")}
    machines = [m.model_dump() for m in p.machines]
    table = cost.speed_table(by_system["teacher"], by_system["student"], machines=machines)
    summary = cost.compare(table)
    for line in summary["headline"]:
        logger.info(line)
    return table, summary
