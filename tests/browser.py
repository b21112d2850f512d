"""Headless Debian chromium driven by Selenium (no browser download): a pytest fixture."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def chrome(download_dir: Path) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1600", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(download_dir), "download.prompt_for_download": False},
    )
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    """A headless chromium whose downloads land in ``browser.download_dir`` (settable)."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make system-deps)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chrome(downloads)
    driver.download_dir = downloads
    try:
        yield driver
    finally:
        driver.quit()


def set_download_dir(driver: object, path: Path) -> None:
    """Point later downloads at ``path`` (Chrome DevTools command)."""
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(path)}
    )
    driver.download_dir = path


def wait_for_file(folder: Path, pattern: str, timeout_s: float = 10.0) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(pattern) if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {pattern} in {folder} after {timeout_s}s")
