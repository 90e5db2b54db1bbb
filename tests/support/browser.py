"""Headless Chromium from Debian's packages, driven by Playwright, for the tests of
pages (the console, CORS from a browser). Missing, it skips the test with a reason, and
fails it in CI (which installs it: ``make install-browser``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from support.services import in_ci

CHROMIUM = "/usr/bin/chromium"


def unavailable(why: str) -> None:
    if in_ci():
        pytest.fail(why)
    pytest.skip(why)


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Playwright browser of the system's Chromium, closed on the way out."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or CHROMIUM
    if not shutil.which(chromium):
        unavailable("Chromium is not installed (make install-browser)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
