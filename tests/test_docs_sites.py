"""Both documentation sites render in a real browser that can reach nothing but loopback.

A real uvicorn process serves them against the test database and the real broker;
Debian's Chromium, driven by Playwright, loads each page with every request to any
other host aborted and recorded. The fast tests below need no browser: the 503 a
page answers when its assets are missing, and what the pages may load.
"""

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.async_api import Browser

from clinic.api import create_app, site_assets
from clinic.api.routes import docs
from clinic.settings import settings
from tests.browser import (
    api_process,
    assert_stayed_local,
    chromium,
    keep_screenshot,
    offline_page,
)
from tests.conftest import unavailable
from tests.processes import ROOT

CHANNELS = ("booking_requests", "booking_notifications", "email_notifications", "parked_messages")
MESSAGES = ("BookAppointment", "BookingStatusChanged", "booking_requests:consume:SubscribeMessage")


@pytest.fixture(scope="module")
def api_url(
    rabbit_vhost: str, mongo_server: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real API process on the test database and broker; its base URL."""
    with api_process(tmp_path_factory.mktemp("docs-sites")) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium (Playwright downloads no browser of its own here)."""
    async with chromium() as launched:
        yield launched


@pytest.mark.e2e
async def test_swagger_ui_renders_the_routes_offline(api_url: str, browser: Browser) -> None:
    async with offline_page(browser) as (page, traffic):
        answer = await page.goto(f"{api_url}/docs")
        assert answer is not None
        assert answer.status == 200, await answer.text()
        await page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        text = await page.inner_text("#swagger-ui")
        await keep_screenshot(page, "docs")
    for route in ("/book", "/booking/{booking_id}", "/bookings", "/doctors", "/ready"):
        assert re.search(rf"^{re.escape(route)}$", text, re.MULTILINE), f"{route} not shown"
    assert_stayed_local(traffic)


@pytest.mark.e2e
async def test_asyncapi_site_renders_the_channels_offline(api_url: str, browser: Browser) -> None:
    async with offline_page(browser) as (page, traffic):
        answer = await page.goto(f"{api_url}/asyncapi")
        assert answer is not None
        assert answer.status == 200, await answer.text()
        await page.wait_for_selector("#asyncapi #messages", timeout=20_000)
        text = await page.inner_text("#asyncapi")
        await keep_screenshot(page, "asyncapi")
    for name in (*CHANNELS, *MESSAGES):
        assert name in text, f"{name} not shown"
    assert "clinic workers" in text
    assert_stayed_local(traffic)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The API app in this process (no lifespan: the pages need no broker or database)."""
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://clinic") as client:
        yield client


@pytest.fixture
def no_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The assets folder is empty, as after an install without npm."""
    monkeypatch.setattr(docs, "ASSETS_DIR", tmp_path)
    monkeypatch.setattr(docs, "_warned", set())
    return tmp_path


async def test_pages_without_their_assets_say_what_is_missing(
    http: httpx.AsyncClient, no_assets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for path, asset in (
        ("/docs", "swagger-ui/swagger-ui-bundle.js"),
        ("/asyncapi", "asyncapi/index.js"),
    ):
        for _ in range(2):
            answer = await http.get(path)
            assert answer.status_code == 503
            assert answer.headers["content-type"].startswith("text/html")
            assert asset in answer.text
            assert "pip install -e ." in answer.text
            assert "npm" in answer.text
            assert "docker compose build" in answer.text
        warnings = [r for r in caplog.records if asset in r.getMessage()]
        assert len(warnings) == 1, "a missing asset is logged once, however often it is asked for"
        assert warnings[0].levelname == "WARNING"


async def test_pages_load_only_from_their_own_origin(http: httpx.AsyncClient) -> None:
    for path in ("/docs", "/asyncapi"):
        answer = await http.get(path)
        if answer.status_code == 503:
            unavailable(f"the documentation assets are not installed: {answer.text}")
        # Every script, style sheet and icon is one of ours, served from this origin.
        urls = re.findall(r"""(?:src|href)=["']([^"']*)["']""", answer.text)
        assert urls, path
        for url in urls:
            assert url == "data:," or url.startswith(docs.ASSETS_URL + "/"), url
            name = url.removeprefix(docs.ASSETS_URL + "/")
            assert url == "data:," or name in site_assets.FILES, url
        policy = dict(
            part.strip().split(" ", 1)
            for part in answer.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        for directive in ("script-src", "style-src", "connect-src", "img-src", "font-src"):
            sources = policy[directive].split()
            assert "'self'" in sources
            assert not [s for s in sources if ":" in s and s != "data:"], (directive, sources)
            assert "'unsafe-inline'" not in sources
    swagger = (await http.get("/docs")).text
    # Swagger UI would send the document's URL to swagger.io's validator otherwise.
    assert '"validatorUrl": null' in swagger
    asyncapi = (await http.get("/asyncapi")).text
    # No "try it out": it would publish to the real broker.
    assert "TryItPlugin" not in asyncapi
    assert (await http.post("/asyncapi/try", json={})).status_code in {404, 405}


async def test_only_the_listed_assets_are_served(http: httpx.AsyncClient) -> None:
    for path in (
        "manifest.json",
        "../site_assets.py",
        "../routes/docs.py",
        "swagger-ui/index.html",
    ):
        assert (await http.get(f"{docs.ASSETS_URL}/{path}")).status_code == 404, path
    missing = [name for name in site_assets.FILES if not (docs.ASSETS_DIR / name).is_file()]
    if missing:
        unavailable(f"the documentation assets are not installed: {missing}")
    for name in site_assets.FILES:
        answer = await http.get(f"{docs.ASSETS_URL}/{name}")
        assert answer.status_code == 200, name
        assert answer.content == (docs.ASSETS_DIR / name).read_bytes()


async def test_served_asyncapi_document_is_the_committed_one(http: httpx.AsyncClient) -> None:
    committed = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    as_json = (await http.get("/asyncapi.json")).json()
    as_yaml = yaml.safe_load((await http.get("/asyncapi.yaml")).text)
    for served in (as_json, as_yaml):
        # The served one names this deployment's vhost; the committed file the default "/".
        vhost = "/" + settings.rabbit_url.rsplit("/", 1)[1]
        assert served["servers"]["development"]["pathname"] == vhost
        assert without_vhost(served["channels"]) == without_vhost(committed["channels"])
        for part in ("operations", "components", "info"):
            assert served[part] == committed[part], part
    # The broker's credentials never reach the public document.
    assert "guest" not in (await http.get("/asyncapi.json")).text


def without_vhost(tree: object) -> object:
    """``tree`` with every ``vhost`` key left out."""
    if isinstance(tree, dict):
        return {key: without_vhost(value) for key, value in tree.items() if key != "vhost"}
    return tree
