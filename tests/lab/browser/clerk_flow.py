"""A clerk in headless Chromium: log in, register a voter through the form, then the same
person under a new ID, and report what the pages said (JSON on stdout).

Run inside the office network (see test_browser.py); it needs Debian's chromium and
chromium-driver, and HOME holding an NSS database that trusts the room's CA.
"""

from __future__ import annotations

import json
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait


def choose(driver: webdriver.Chrome, name: str, code: str) -> None:
    """Pick code in the select called name, once the page's script has filled it."""
    WebDriverWait(driver, 15).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f"select[name={name}] option[value='{code}']")
        )
    )
    Select(driver.find_element(By.NAME, name)).select_by_value(code)


def fill_and_send(driver: webdriver.Chrome, base: str, person: dict[str, str]) -> None:
    driver.get(f"{base}/register")
    for field in ("national_id", "name_km", "name_latin", "date_of_birth"):
        box = driver.find_element(By.NAME, field)
        box.clear()
        box.send_keys(person[field])
    Select(driver.find_element(By.NAME, "sex")).select_by_value(person["sex"])
    choose(driver, "province_code", person["commune_code"][:2])
    choose(driver, "district_code", person["commune_code"][:4])
    choose(driver, "commune_code", person["commune_code"])
    choose(driver, "polling_station", person["polling_station"])
    driver.find_element(By.ID, "submit").click()


def main() -> int:
    spec = json.loads(sys.stdin.read())
    base = spec["base"]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tempfile.mkdtemp(prefix='clerk-')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    report: dict[str, str] = {}
    try:
        driver.get(f"{base}/login")
        driver.find_element(By.NAME, "name").send_keys(spec["user"])
        driver.find_element(By.NAME, "password").send_keys(spec["password"])
        driver.find_element(By.TAG_NAME, "form").submit()
        WebDriverWait(driver, 15).until(ec.url_contains("/register"))
        fill_and_send(driver, base, spec["person"])
        WebDriverWait(driver, 15).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, ".flash, .error"))
        )
        report["first"] = driver.find_element(By.TAG_NAME, "main").text
        fill_and_send(driver, base, spec["twin"])
        WebDriverWait(driver, 15).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#duplicate-warning, .error"))
        )
        report["second"] = driver.find_element(By.TAG_NAME, "main").text
        report["url"] = driver.current_url
    except Exception as exc:  # the report carries any failure to the test
        report["error"] = f"{type(exc).__name__}: {exc}"
        report["page"] = driver.page_source[:3000]
    finally:
        driver.quit()
    sys.stdout.write(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
