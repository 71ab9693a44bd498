"""Browser tests: the admin driven in a real headless Chromium (Playwright on Debian's `chromium` package).

- The browser is `/usr/bin/chromium` (or `$CHROMIUM`). Without it the tests here are skipped with a message saying
  how to install it; under CI (`CI` set) a missing browser fails instead, so CI can never pass without running them.
  `.ci/run` installs the package.
- Each test gets a fresh browser context (its own cookies) against pytest-django's `live_server`, which serves the
  admin's static files. The live server needs a transactional database: data a test needs is made in the test.
- `login(user)` signs a staff user in through the real login form and returns the page. `screenshot(page, name)` saves
  a full-page PNG under `artifacts/screenshots/` (kept by CI; not in git).
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.customers.factories import StaffUserFactory

PASSWORD = "correct horse battery"  # StaffUserFactory's
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

# Playwright's sync API runs an event loop in the test's thread; Django refuses ORM calls from a thread with a running
# loop unless told this is deliberate. The ORM calls here are the test's own, made between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _chromium_path() -> str | None:
    candidate = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).exists() else None


def pytest_collection_modifyitems(config, items):
    if _chromium_path():
        return
    message = "no Chromium here: install Debian's package (apt-get install chromium) or set CHROMIUM=/path/to/chromium"
    if os.environ.get("CI"):
        raise pytest.UsageError(f"browser tests cannot run in CI: {message}")
    skip = pytest.mark.skip(reason=message)
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=_chromium_path(), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    # The browser asks for /favicon.ico on its own; its 404 is not the page's error.
    page.on("requestfailed", lambda request: None)
    page.on("response", lambda response: _forget_favicon(errors, response))
    page.console_errors = errors  # a test can assert there were none (CSP violations show up here)
    yield page
    context.close()


def _forget_favicon(errors: list[str], response) -> None:
    if response.url.endswith("/favicon.ico") and response.status == 404:
        errors.append("__favicon__")


def _without_favicon(errors: list[str]) -> list[str]:
    if "__favicon__" not in errors:
        return errors
    return [e for e in errors if e != "__favicon__" and not e.startswith("Failed to load resource")]


@pytest.fixture
def login(page):
    """Sign `user` in through the admin login form; returns the page, now on the admin's front page."""

    def sign_in(user, password: str = PASSWORD):
        page.goto("/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_load_state()
        return page

    return sign_in


@pytest.fixture
def screenshot():
    def save(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def superuser(transactional_db):
    return StaffUserFactory(is_superuser=True, username="owner")
