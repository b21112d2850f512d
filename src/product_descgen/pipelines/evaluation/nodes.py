"""evaluation nodes: thin adapters over :mod:`product_descgen.evaluation`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from product_descgen.callstore import CallStore
from product_descgen.evaluation import cost, judge, metrics, preference, ratings, speed, stamp
from product_descgen.evaluation.config import EvaluationParams
from product_descgen.evaluation.inference import (
    ServedStudent,
    baseline_requests,
    identity,
    run_student,
    served_model,
    stored_results,
)
from product_descgen.llm.backends import Connection, make_backend
from product_descgen.models import model_fingerprint
from product_descgen.prompting import PromptSet
from product_descgen.step_runner import keyed
from product_descgen.teacher.config import TeacherParams
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


def serve_student(
    student_adapter: str,
    student_openvino: str,
    student_llm: Connection,
    finetune: FinetuneParams,
    params: EvaluationParams,
) -> ServedStudent:
    """The trained student as evaluation, describe and the speed test all serve it: by
    ``student_llm``, with the serving contract saved with its adapter (a changed
    ``finetune.prompt_template`` fails here) and ``evaluation.student_generation``."""
    template, settings = served_prompt(
        student_adapter, finetune.prompt_template, params.student_generation
    )
    model_dir, adapter = served_model(student_llm, student_adapter, student_openvino)
    return ServedStudent(
        connection=student_llm, model_dir=model_dir, adapter=adapter, template=template,
        settings=settings, trained_adapter=model_fingerprint(student_adapter),
    )  # fmt: skip


def describe_with_student(
    eval_set: pd.DataFrame,
    served_student: ServedStudent,
    student_call_store: CallStore,
    params: EvaluationParams,
) -> pd.DataFrame:
    """The fine-tuned student: one inference per product with its short training prompt."""
    return run_student(eval_set, served_student, student_call_store, "student", params.progress)


def describe_with_base_student(
    eval_set: pd.DataFrame,
    baseline_prompts: dict[str, Any],
    student_llm: Connection,
    student_call_store: CallStore,
    teacher: TeacherParams,
    params: EvaluationParams,
) -> pd.DataFrame:
    """The student before fine-tuning: one inference with the teacher's instructions (answers
    stored in ``student_call_store``, so a re-run of evaluation asks nothing twice)."""
    prompts = PromptSet.model_validate(baseline_prompts)
    settings = prompts.with_stop(params.baseline_generation)
    requests = keyed(
        baseline_requests(eval_set, prompts, teacher.rules.model_dump()), step="base student",
        model=student_llm.model_id, settings=settings.cache_key(),
    )  # fmt: skip
    return stored_results(
        requests, lambda: make_backend(student_llm, student_llm.model_dir, settings),
        student_call_store, "base student", params.progress,
    )  # fmt: skip


def _texts(eval_set: pd.DataFrame, outputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table: one row per (system, product) with the text and what scoring needs."""
    base = eval_set[["product_id", "category", "input_text", "attributes", "reference"]]
    parts = [base.assign(system="teacher", text=eval_set["reference"])]
    for system, frame in outputs.items():
        parts.append(
            base.merge(
                frame[["product_id", "text", "finish_reason"]], on="product_id", how="left"
            ).assign(system=system)
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
    embedder = metrics.load_embedder(params.metrics.embedding_model)
    scores = metrics.score_items(texts, embedder, params.metrics)
    size = {"test_items": len(eval_set), "min_test_items": params.min_test_items,
            "enough": len(eval_set) >= params.min_test_items}  # fmt: skip
    if not size["enough"]:
        logger.warning(
            "Evaluation on %d test products (min_test_items %d): its figures are indicative "
            "only; raise teacher_generation.max_examples or data_prep.split.test",
            len(eval_set), params.min_test_items,
        )  # fmt: skip
    aggregate = metrics.aggregate(scores, texts, params.metrics)
    return scores, {**aggregate, "size": size, **stamp.texts_stamp(student_outputs, eval_set)}


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
    human_ratings: dict[str, Callable[[], str | bytes]],
    human_eval_key: pd.DataFrame,
    student_outputs: pd.DataFrame,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Raters' files, unblinded: judgments, rejected rows with reasons, and preference shares
    (stamped with this evaluation's student texts, which the key's kit is built from in the
    same run)."""
    files, unreadable = ratings.parse_rater_files(human_ratings)
    judgments, rejections = ratings.read_ratings(files, human_eval_key)
    rejections = (
        pd.concat([unreadable, rejections], ignore_index=True) if len(unreadable) else rejections
    )
    logger.info(
        "Human ratings: %d files (%d unreadable), %d judgments, %d rejected rows",
        len(human_ratings), len(human_ratings) - len(files), len(judgments), len(rejections),
    )  # fmt: skip
    summary = preference.human_reliability(
        preference.preference_summary(judgments, params.human_eval.confidence),
        params.human_eval.min_judgments,
    )
    return judgments, rejections, {
        "files": ratings.in_file_order(human_ratings),
        "n_rejected_rows": int((rejections["reason"] != ratings.REPLACED).sum()),
        "n_replaced_rows": int((rejections["reason"] == ratings.REPLACED).sum()), **summary,
        **stamp.texts_stamp(student_outputs),
    }  # fmt: skip


def judge_pairs(
    eval_set: pd.DataFrame,
    student_outputs: pd.DataFrame,
    judge_prompts: dict[str, Any],
    judge_llm: Connection,
    judge_call_store: CallStore,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The LLM judge on every (teacher, student) pair, asked in both orders."""
    pairs = _pairs(eval_set, student_outputs).dropna(subset=["teacher", "student"])
    j, confidence = params.judge, params.human_eval.confidence
    if not j.enabled or pairs.empty:
        empty = pd.DataFrame(columns=["product_id", "choice"])
        verdicts = preference.judge_verdicts(empty, empty)
        summary = preference.judge_summary(verdicts, confidence, 1, 0.0)
        return verdicts, {**summary, "enabled": j.enabled, "reliable": False,
                          "unreliable_because": "the judge did not run",
                          **stamp.texts_stamp(student_outputs, eval_set)}  # fmt: skip
    prompts = PromptSet.model_validate(judge_prompts)
    verdicts = judge.judge_both_orders(
        pairs, prompts, judge_llm, judge_call_store, j.generation, params.progress
    )
    summary = preference.judge_summary(
        verdicts, confidence, j.min_valid, j.min_position_consistency
    )
    return verdicts, {
        **summary, "judge_model": judge_llm.model_id,
        **stamp.texts_stamp(student_outputs, eval_set),
    }  # fmt: skip


def _speed_sample(
    test_examples: pd.DataFrame, params: EvaluationParams
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The speed test's measured products and warm-up products, the same for both systems.
    Any test product will do (no reference is needed): drawn from the whole test split."""
    p = params.speed
    if test_examples.empty:
        raise ValueError("the test split is empty: nothing to measure speed on")
    drawn = test_examples.sample(
        n=min(p.sample_size + p.warmup_size, len(test_examples)), random_state=p.seed
    )
    records = drawn[["product_id", "input_text", "audience"]].to_dict(orient="records")
    n_warm = min(p.warmup_size, len(records) - 1)
    if len(records) - n_warm < p.sample_size:
        logger.warning(
            "Speed test on %d products (sample_size %d): the test split is small",
            len(records) - n_warm, p.sample_size,
        )  # fmt: skip
    return records[n_warm:], records[:n_warm]


def teacher_speed_job(
    test_examples: pd.DataFrame,
    teacher_prompts: dict[str, Any],
    speed_teacher_llm: Connection,
    teacher: TeacherParams,
    params: EvaluationParams,
) -> speed.SpeedJob:
    """The teacher pipeline's speed-test job (draft + refine, as teacher_generation runs it)."""
    items, warmup = _speed_sample(test_examples, params)
    return speed.SpeedJob(
        system="teacher", connection=speed_teacher_llm, model_dir=speed_teacher_llm.model_dir,
        prompts=teacher_prompts, rules=teacher.rules.model_dump(), draft=teacher.draft,
        refine=teacher.refine, items=items, warmup_items=warmup,
    )  # fmt: skip


def student_speed_job(
    test_examples: pd.DataFrame,
    served_student: ServedStudent,
    teacher: TeacherParams,
    params: EvaluationParams,
) -> speed.SpeedJob:
    """The student's speed-test job: served as evaluation and describe serve it, on the same
    products as the teacher's job, checked by the same gate."""
    items, warmup = _speed_sample(test_examples, params)
    s = served_student
    return speed.SpeedJob(
        system="student", connection=s.connection, model_dir=s.model_dir, adapter=s.adapter,
        template=s.template, generation=s.settings, items=items, warmup_items=warmup,
    )  # fmt: skip


def measure_speed(
    teacher_job: speed.SpeedJob,
    student_job: speed.SpeedJob,
    model_inputs: pd.DataFrame,
    teacher: TeacherParams,
    params: EvaluationParams,
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Teacher pipeline vs student on the same test products: alternated rounds, each system
    in a fresh process; medians over the rounds with their spread, every round's figures, and
    every delivered text through the teacher's quality gate (``model_inputs``: the catalogue
    it checks against)."""
    p = params.speed
    machines = [m.model_dump() for m in p.machines]
    speed.check_catalogue([item["product_id"] for item in teacher_job.items], model_inputs)
    runs = speed.run_pairs(
        (teacher_job, student_job), p.pairs, p.timeout_s,
        check_first=lambda first: cost.check_machines(first, machines),
    )  # fmt: skip
    outputs = speed.gate_outputs(runs, model_inputs, teacher.gate, teacher.embedding_model)
    by_system = {row["system"]: row for row in speed.summarise_rounds(runs).to_dict("records")}
    table = cost.speed_table(by_system["teacher"], by_system["student"], machines=machines)
    summary = cost.compare(table)
    s = student_job  # the student measured, as evaluation's outputs name it (stamp)
    served = ServedStudent(connection=s.connection, model_dir=s.model_dir, adapter=s.adapter,
                           template=str(s.template), settings=s.generation)  # fmt: skip
    summary[stamp.STAMP] = {"student": identity(served)}
    ratios, n = speed.round_ratios(runs), len(teacher_job.items)
    summary |= {
        "throughput_ratio_min": min(ratios), "throughput_ratio_max": max(ratios),
        "gate_noise_band": speed.difference_band(
            summary["teacher_gate_pass_rate"], summary["student_gate_pass_rate"], n
        ),
        "sample": {"products": n, "rounds": p.pairs, "min_products": p.min_products,
                   "enough": n >= p.min_products},
    }  # fmt: skip
    rounds, spread = (
        (f"{p.pairs} alternated rounds",
         f"throughput ratio {min(ratios):.1f}x to {max(ratios):.1f}x over the rounds")
        if p.pairs > 1
        else ("1 round", "one round: no spread measured")
    )  # fmt: skip
    threads = by_system["teacher"].get("threads")
    each = f", {threads:.0f} CPU thread(s) each" if threads else ""
    summary["headline"].append(
        f"Measured on {n} products, {rounds} of fresh processes{each}: {spread}."
    )
    for line in summary["headline"]:
        logger.info(line)
    if not summary["sample"]["enough"]:
        logger.warning(
            "Speed test on %d products (min_products %d): its figures are indicative only",
            n, p.min_products,
        )  # fmt: skip
    return table, summary, speed.round_figures(runs), outputs
