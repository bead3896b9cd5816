"""A real headless Chromium for the tests of pages that update themselves.

Tests take it as the ``browser`` fixture (tests/conftest.py); ``admin_login``
signs a user in through the admin's own form.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.prerequisites import require

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "var/screenshots"))
WINDOW = (1280, 1000)


def chromium(profile: Path, *, window: tuple[int, int] = WINDOW) -> webdriver.Chrome:
    """Debian's chromium under its chromium-driver, headless, with a profile of its own."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    require(
        bool(binary and driver), "Chromium and ChromeDriver (Debian's chromium, chromium-driver)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(argument)
    # What the page fetched, for tests that count its requests (Network.requestWillBeSent).
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def admin_login(driver: webdriver.Chrome, *, username: str, password: str) -> None:
    """Fill in and send the admin's login form the browser is on; returns once it has left it."""
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: "/login/" not in d.current_url)


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    return path
