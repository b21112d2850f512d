"""The rating page in a real browser (headless Debian chromium): a second rater in the same
browser starts from a blank page and downloads only their own judgments."""

from __future__ import annotations

import pandas as pd
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from product_descgen.evaluation.preference import build_kit, render_page
from tests.browser import browser, set_download_dir, wait_for_file  # noqa: F401 - fixture
from tests.evaluation.test_preference import make_pairs


def test_a_second_rater_in_the_same_browser_starts_blank(browser, tmp_path):  # noqa: F811
    """The page restored the last rater's name and choices, so the next rater's file carried
    them too (counted twice); then, keyed by name, a reload let the next visitor's clicks
    land under the last name, and a saved rater typing her name again blanked her choices."""
    sheet, _ = build_kit(make_pairs(), n_items=3, seed=5)
    ids = sheet["item_id"].tolist()
    page = tmp_path / "rate.html"
    page.write_text(render_page(sheet), encoding="utf-8")

    def progress() -> str:
        return browser.find_element(By.ID, "progress").text

    def name_as(name: str) -> None:
        field = browser.find_element(By.ID, "rater")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE, name, Keys.TAB)

    def download_to(folder_name: str) -> pd.DataFrame:
        folder = tmp_path / folder_name
        folder.mkdir()
        set_download_dir(browser, folder)
        browser.find_element(By.ID, "download").click()
        return pd.read_csv(wait_for_file(folder, "judgments-*.csv"))

    def status() -> str:
        return browser.find_element(By.ID, "status").text

    def name_field() -> str:
        return browser.find_element(By.ID, "rater").get_attribute("value")

    browser.get(page.as_uri())
    browser.find_element(By.ID, f"{ids[0]}-A").click()  # nobody's: refused
    assert progress().startswith("0 / 3") and status() == "Enter your name first."
    name_as("Alice")
    browser.find_element(By.ID, f"{ids[0]}-A").click()
    browser.find_element(By.ID, f"{ids[1]}-tie").click()
    assert download_to("alice")[["rater", "choice"]].values.tolist() == [
        ["Alice", "A"], ["Alice", "tie"]
    ]  # fmt: skip

    def reloaded() -> bool:  # the browser keeps a page's storage writes asynchronously
        browser.refresh()
        return "Alice" in status()

    # the next visitor gets a blank page, told whose ratings are saved
    WebDriverWait(browser, 10, poll_frequency=0.5).until(lambda _: reloaded())
    assert name_field() == "" and progress().startswith("0 / 3")
    name_as("Bob")
    assert progress().startswith("0 / 3")
    browser.find_element(By.ID, f"{ids[2]}-B").click()
    assert download_to("bob").values.tolist() == [["Bob", ids[2], "B"]]

    name_as("alice")  # Alice's own choices again, whatever the case
    assert progress().startswith("2 / 3")
    browser.find_element(By.ID, "new-rater").click()
    assert name_field() == "" and progress().startswith("0 / 3")
    name_as("Alice")  # a saved rater's name brings her choices back (it blanked them)
    assert progress().startswith("2 / 3")
    name_as("Иван")
    browser.find_element(By.ID, f"{ids[0]}-B").click()
    assert download_to("ivan").values.tolist() == [["Иван", ids[0], "B"]]
    assert list((tmp_path / "ivan").glob("*.csv"))[0].name == "judgments-Иван.csv"
