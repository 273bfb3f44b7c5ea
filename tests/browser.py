"""A real browser for the tests of the clinic's pages: Debian's Chromium, driven by
Playwright, on pages whose every request off loopback is aborted and recorded."""

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    Route,
    async_playwright,
)

from clinic.embedded_db import free_port
from tests.conftest import unavailable
from tests.processes import ROOT, running, wait_until_up

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Traffic:
    """What a page asked for that it should not have, or did not get."""

    left_loopback: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's headless Chromium (Playwright downloads no browser of its own here)."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(executable, os.X_OK):
        unavailable("Debian's chromium is not installed: apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@asynccontextmanager
async def offline_page(browser: Browser) -> AsyncIterator[tuple[Page, Traffic]]:
    """A page whose every request off loopback is aborted; what it tried and what failed."""
    traffic = Traffic()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})

    async def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme == "data" or urlsplit(url).hostname in LOOPBACK:
            await route.continue_()
        else:
            traffic.left_loopback.append(url)
            await route.abort("blockedbyclient")

    def answered(response: Response) -> None:
        if response.status >= 400:
            traffic.failed.append(f"{response.status} {response.url}")

    def not_answered(request: Request) -> None:
        if request.url not in traffic.left_loopback:
            traffic.failed.append(f"{request.failure} {request.url}")

    # A script the Content-Security-Policy refused, or one that broke, shows up here.
    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            traffic.errors.append(message.text[:300])

    def broke(error: Error) -> None:
        traffic.errors.append(str(error)[:300])

    await context.route("**/*", only_loopback)
    page = await context.new_page()
    page.on("response", answered)
    page.on("requestfailed", not_answered)
    page.on("console", console)
    page.on("pageerror", broke)
    try:
        yield page, traffic
    finally:
        await context.close()


async def keep_screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in test-artifacts/, for a person to look at; its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def assert_stayed_local(traffic: Traffic) -> None:
    assert not traffic.left_loopback, f"requests left loopback: {traffic.left_loopback}"
    assert not traffic.failed, f"requests failed: {traffic.failed}"
    assert not traffic.errors, f"the page's scripts failed: {traffic.errors}"


@contextmanager
def api_process(folder: Path) -> Iterator[str]:
    """A real API process on the test database and broker, logging into ``folder``; its URL."""
    port = free_port()
    with running(f"uvicorn clinic.api:app --port {port}", folder / "api.log"):
        wait_until_up(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
