"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, one server per module.

* ``browser`` (session): headless Chromium at /usr/bin/chromium, installed with apt-get when missing
  (the test command must work on a fresh machine; Playwright downloads no browser of its own).
* ``web_server`` (module): a real server (SQLite catalog) for the module's tests.
* ``admin`` / ``make_user``: people with passwords (``tests.support.web.Person``).
* ``sign_in(person)`` / ``admin_page``: a Playwright page signed in through the sign-in form.
* ``screenshot(page, name)``: saves test-artifacts/screenshots/NAME.png (gitignored).
* ``check_accessibility(page)``: runs the vendored axe-core; fails on serious or critical violations.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.server import RunningServer
from tests.support.web import Person, make_person, start_patiently

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = ROOT / "tests" / "support" / "axe" / "axe.min.js"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 400, "height": 900}


def ensure_chromium() -> Path:
    """Debian's chromium, installed when missing (as root: ``apt-get update`` then ``install``).
    A lock keeps parallel test workers from running apt-get at the same time."""
    if CHROMIUM.exists():
        return CHROMIUM
    with open("/tmp/datagrove-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if CHROMIUM.exists():
            return CHROMIUM
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail("the browser tests need /usr/bin/chromium: run `apt-get install chromium` as root")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "chromium"], check=True, env=env, stdout=subprocess.DEVNULL
        )
    if not CHROMIUM.exists():
        pytest.fail("apt-get install chromium did not provide /usr/bin/chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=str(ensure_chromium()),
        headless=True,
        # Root (CI) cannot use Chromium's sandbox; /dev/shm is small in containers.
        args=["--no-sandbox", "--disable-dev-shm-usage"],
    )
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_patiently(RunningServer(data_dir=tmp_path_factory.mktemp("web-server"), catalog_url=None))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(web_server: RunningServer) -> Person:
    return make_person(web_server, "Admin", name="Ada Admin")


@pytest.fixture
def make_user(web_server: RunningServer) -> Callable[..., Person]:
    def make(role: str = "Participant", name: str | None = None) -> Person:
        return make_person(web_server, role, name)

    return make


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """New browser contexts (each its own cookies), closed after the test. CSP is bypassed only so
    that the tests can inject axe-core; the pages themselves never need it."""
    contexts: list[BrowserContext] = []

    def make(viewport: dict[str, int] | None = None) -> BrowserContext:
        context = browser.new_context(viewport=viewport or WIDE, bypass_csp=True)  # type: ignore[arg-type]
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def sign_in(web_server: RunningServer, new_context: Callable[..., BrowserContext]) -> Callable[..., Page]:
    """``sign_in(person, viewport=None)``: a page signed in through the form, on the datasets list."""

    def signed_in(person: Person, viewport: dict[str, int] | None = None) -> Page:
        page = new_context(viewport).new_page()
        page.goto(web_server.base_url + "/")
        page.get_by_label("Email", exact=True).fill(person.email)
        page.get_by_label("Password", exact=True).fill(person.password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url("**/ui/datasets")
        return page

    return signed_in


@pytest.fixture
def admin_page(sign_in: Callable[..., Page], admin: Person) -> Page:
    return sign_in(admin)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_accessibility(page: Page) -> None:
    """axe-core's WCAG checks on the page as it is; serious or critical violations fail the test."""
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
    report = "\n".join(
        f"{v['impact']}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:5]}" for v in bad
    )
    assert not bad, f"accessibility violations on {page.url}:\n{report}"
