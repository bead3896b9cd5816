"""The order flow's fixtures, and a Chromium that keeps a performance log of what it fetched."""

import shutil

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.flow.conftest import stock  # noqa: F401
from tests.support.prerequisites import require


@pytest.fixture
def chromium(tmp_path):
    program, driver_program = shutil.which("chromium"), shutil.which("chromedriver")
    require(bool(program and driver_program), "Chromium and ChromeDriver")
    options = webdriver.ChromeOptions()
    options.binary_location = program
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_program))
    yield driver
    driver.quit()
