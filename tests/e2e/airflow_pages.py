"""Reading Airflow's UI in the e2e tests' Chromium: sign in, and wait until a page says what it
should (the UI renders in the browser, so a page's text arrives after the page)."""

from __future__ import annotations

import time
from typing import Any


def wait_for_text(driver: Any, text: str, timeout_s: float = 60) -> str:
    """The page's text once it contains `text`; fails with what the page said instead."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        try:
            body = driver.find_element("tag name", "body").text
        except StaleElementReferenceException:  # re-rendered (a redirect, the UI's router)
            time.sleep(0.2)
            continue
        if text in body:
            return body
        time.sleep(1)
    raise AssertionError(f"{text!r} not on {driver.current_url}; page says:\n{body[:2000]}")


def sign_in(browser: Any, url: str, user: str, password: str) -> None:
    """Sign in on Airflow's login page; fails if the browser is still on it a minute later."""
    browser.get(url + "/")
    wait_for_text(browser, "Sign in")
    browser.find_element("name", "username").send_keys(user)
    browser.find_element("name", "password").send_keys(password)
    browser.find_element("xpath", "//button[normalize-space()='Sign in']").click()
    deadline = time.monotonic() + 60
    while "/auth/login" in browser.current_url and time.monotonic() < deadline:
        time.sleep(1)
    assert "/auth/login" not in browser.current_url, "login did not succeed"
