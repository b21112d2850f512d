"""Seen in a real browser (headless Debian chromium): a rater rates on the blind page, the
downloaded judgments file is read by the next evaluation run, and the report's figures draw."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from product_descgen.evaluation.stamp import HISTORY_KEY
from tests.browser import browser, set_download_dir, wait_for_file  # noqa: F401 - fixture
from tests.pipelines.evaluation.fixtures import (
    serve_student_in_float32,
    write_adapter,
    write_model_exports,
    write_newer_adapter,
    write_student_openvino,
    write_test_sets,
    write_upstream_reports,
)
from tests.pipelines.evaluation.test_pipeline import small_evaluation, small_teacher
from tests.pipelines.helpers import run_pipeline


def evaluate(project, tiny_model_dir) -> None:
    run_pipeline(
        project, tiny_model_dir, "evaluation",
        evaluation=small_evaluation(project), teacher_generation=small_teacher(project),
    )  # fmt: skip


def report_refuses_a_mix(project, tiny_model_dir) -> None:
    """Outputs left by runs stopped part-way (or run out of order) are not reported together."""
    # A finetune run stopped after saving its vice report leaves the training history of the
    # run before: the report refuses to chart it.
    vices_path = project / "data" / "08_reporting" / "vice_report.json"
    vices = json.loads(vices_path.read_text())
    vices_path.write_text(json.dumps({**vices, HISTORY_KEY: "another training's history"}))
    with pytest.raises(Exception, match=r"training_history is not of the training that wrote vi"):
        run_pipeline(project, tiny_model_dir, "reporting")
    vices_path.write_text(json.dumps(vices))

    # An evaluation run stopped after rebuilding eval_set with new teacher references leaves
    # the metrics and judge scored against the earlier ones: the report refuses its examples.
    eval_set_path = project / "data" / "05_model_input" / "eval_set.parquet"
    eval_set = pd.read_parquet(eval_set_path)
    eval_set.assign(reference=eval_set["reference"] + " Newer.").to_parquet(eval_set_path)
    with pytest.raises(Exception, match=r"eval_metrics, judge_preference were .*other teacher ref"):
        run_pipeline(project, tiny_model_dir, "reporting")
    eval_set.to_parquet(eval_set_path)

    # An evaluation run stopped after the student wrote new texts leaves the later summaries
    # from the run before: the report refuses to mix them.
    outputs_path = project / "data" / "07_model_output" / "student_outputs.parquet"
    outputs = pd.read_parquet(outputs_path)
    outputs.loc[0, "text"] = f"{outputs.loc[0, 'text']} A newer text."
    outputs.to_parquet(outputs_path)
    with pytest.raises(Exception, match=r"eval_metrics, .*re-run kedro run --pipeline evaluation"):
        run_pipeline(project, tiny_model_dir, "reporting")

    # A finetune run after the evaluation leaves a newer adapter: the report refuses to chart
    # its training beside the earlier student's figures.
    write_newer_adapter(project)
    with pytest.raises(Exception, match=r"another trained student than the newest"):
        run_pipeline(project, tiny_model_dir, "reporting")


@pytest.mark.slow
def test_rate_in_browser_then_report(
    project_copy,
    tiny_model_dir,
    tiny_openvino_dir,
    tiny_openvino_int8_dir,
    browser,  # noqa: F811
    tmp_path,
):
    write_test_sets(project_copy, n=4)
    write_adapter(project_copy, tiny_model_dir)
    write_student_openvino(project_copy, tiny_openvino_dir)
    serve_student_in_float32(project_copy)
    write_model_exports(
        project_copy, tiny_model_dir, fp32=tiny_openvino_dir, int8=tiny_openvino_int8_dir
    )
    evaluate(project_copy, tiny_model_dir)
    data = project_copy / "data"
    key = pd.read_csv(data / "07_model_output" / "human_eval_key.csv")

    # A rater opens the page, rates every item "A", and downloads the judgments.
    ratings = data / "01_raw" / "human_ratings"
    ratings.mkdir(exist_ok=True)
    browser.get((data / "08_reporting" / "human_eval" / "rate.html").as_uri())
    set_download_dir(browser, ratings)
    browser.find_element(By.ID, "rater").send_keys("Ann Rater")
    for item_id in key["item_id"]:
        browser.find_element(By.ID, f"{item_id}-A").click()
    assert browser.find_element(By.ID, "progress").text.startswith(f"{len(key)} / {len(key)}")
    browser.save_screenshot(str(tmp_path / "rate.png"))
    browser.find_element(By.ID, "download").click()
    downloaded = wait_for_file(ratings, "judgments-*.csv")
    assert pd.read_csv(downloaded)["choice"].tolist() == ["A"] * len(key)

    # The next evaluation run reads the file and unblinds it through the key.
    evaluate(project_copy, tiny_model_dir)
    human = json.loads((data / "08_reporting" / "human_preference.json").read_text())
    assert human["n_judgments"] == len(key) and human["files"] == [downloaded.name]
    teacher_share = (key["a_system"] == "teacher").mean()
    assert human["shares"]["teacher"]["share"] == pytest.approx(teacher_share)

    # The report: every figure draws, text is escaped, the numbers are there.
    write_upstream_reports(project_copy)
    run_pipeline(project_copy, tiny_model_dir, "reporting")
    report = data / "08_reporting" / "report.html"
    browser.get(report.as_uri())
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= 5
    )
    figures = browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    assert len(figures) == 5
    for figure in figures:  # drawn: plotly rendered an SVG with marks in it
        assert figure.find_elements(By.CSS_SELECTOR, ".main-svg")
        assert figure.find_elements(By.CSS_SELECTOR, ".trace, .bars, .scatterlayer .trace")
    assert "reference case" in browser.find_element(By.ID, "key-numbers").text
    assert browser.find_elements(By.CSS_SELECTOR, "#examples tr")
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000
    for chart in ("funnel", "training", "quality", "preference", "cost_speed"):
        assert (data / "08_reporting" / "charts" / f"{chart}.json").is_file()

    report_refuses_a_mix(project_copy, tiny_model_dir)
