"""The patient's page of a booking, where the emails' manage link leads, in a real
browser: Debian's Chromium, driven by Playwright, against a real API process on the
test database, every request off loopback aborted and recorded.
"""

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Dialog, expect

from clinic.api import create_app
from clinic.domain.manage_tokens import new_manage_token
from clinic.store.documents import Booking, Doctor, SlotClaim
from clinic.store.slots import slot_key
from tests.browser import (
    api_process,
    assert_stayed_local,
    chromium,
    keep_screenshot,
    offline_page,
)
from tests.integration import next_monday

pytestmark = pytest.mark.usefixtures("clean_db")

MONDAY = next_monday()
NINE = MONDAY.replace(hour=9)  # clinic-local time


@pytest.fixture(scope="module")
def api_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the API process writes its log."""
    return tmp_path_factory.mktemp("manage-page")


@pytest.fixture(scope="module")
def api_url(rabbit_vhost: str, mongo_server: object, api_folder: Path) -> Iterator[str]:
    """A real API process on the test database and broker; its base URL."""
    with api_process(api_folder) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium."""
    async with chromium() as launched:
        yield launched


async def confirmed_booking() -> tuple[Booking, str]:
    """A confirmed booking at 09:00 next Monday with a doctor who sees patients from 9
    to 10 in 30-minute slots; the booking and its manage token."""
    hours = {"mon": [("09:00", "10:00")]}
    await Doctor(
        id="dra-pagina", name="Dra. Página", specialty="Medicina", working_hours=hours
    ).insert()
    booking = Booking(
        patient_name="Ann Lee",
        patient_email="ann@example.com",
        date=NINE,
        doctor_id="dra-pagina",
        doctor_name="Dra. Página",
        status="confirmed",
        language="en",
        revision=1,
    )
    token, booking.manage_token_digest = new_manage_token(booking.id)
    await booking.insert()
    claim = SlotClaim(
        id=slot_key("dra-pagina", NINE), doctor_id="dra-pagina", start=NINE, booking_id=booking.id
    )
    await claim.insert()
    return booking, token


async def accept(dialog: Dialog) -> None:
    """Say yes to the page's "are you sure?"."""
    await dialog.accept()


@pytest.mark.e2e
async def test_the_emails_link_opens_the_booking_and_cancels_it(
    api_url: str, api_folder: Path, browser: Browser
) -> None:
    booking, token = await confirmed_booking()
    async with offline_page(browser) as (page, traffic):
        page.on("dialog", accept)
        answer = await page.goto(f"{api_url}/manage/{booking.id}#{token}")
        assert answer is not None
        assert answer.status == 200
        await page.wait_for_selector("#details:not([hidden])")
        assert await page.inner_text("#status") == "confirmed"
        assert await page.inner_text("#patient") == "Ann Lee"
        assert await page.inner_text("#doctor") == "Dra. Página"
        assert "9:00" in await page.inner_text("#when")
        await keep_screenshot(page, "manage")
        await page.click("#cancel")
        await expect(page.locator("#status")).to_have_text("cancelled")
    stored = await Booking.get(booking.id)
    assert stored is not None
    assert stored.status == "cancelled"
    assert_stayed_local(traffic)
    # The token travelled in the fragment and a header: no URL, and so no log, has it.
    log = (api_folder / "api.log").read_text()
    assert f"GET /manage/{booking.id} " in log
    assert token not in log


@pytest.mark.e2e
async def test_the_page_offers_the_free_slots_and_asks_for_the_move(
    api_url: str, browser: Browser
) -> None:
    booking, token = await confirmed_booking()
    async with offline_page(browser) as (page, traffic):
        await page.goto(f"{api_url}/manage/{booking.id}#{token}")
        await page.wait_for_selector("#actions:not([hidden])")
        await page.fill("#day", MONDAY.strftime("%Y-%m-%d"))
        await page.wait_for_selector("#slots button")
        [free] = await page.query_selector_all("#slots button")  # 09:30; 09:00 is its own
        await free.click()
        await expect(page.locator("#actions")).to_be_hidden()
        message = await page.inner_text("#message")
    stored = await Booking.get(booking.id)
    assert stored is not None
    assert stored.pending_move is not None
    assert stored.pending_move.date == NINE + timedelta(minutes=30)
    assert message.startswith("We are moving your appointment")
    assert_stayed_local(traffic)


@pytest.mark.e2e
async def test_a_wrong_token_opens_nothing(api_url: str, browser: Browser) -> None:
    booking, _ = await confirmed_booking()
    async with offline_page(browser) as (page, _traffic):
        await page.goto(f"{api_url}/manage/{booking.id}#not-the-token")
        await expect(page.locator("#message")).not_to_have_text("Cargando…")
        message = await page.inner_text("#message")
        details_hidden = await page.is_hidden("#details")
    assert "opens no appointment" in message
    assert details_hidden
    assert "Ann Lee" not in message


async def test_the_page_may_load_and_call_its_own_origin_only() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://clinic") as client:
        page = await client.get("/manage/3f2b8c1e-7d4a-4c55-9a0e-2b6f1d9c8e71")
        script = await client.get("/manage/assets/manage.js")
        other = await client.get("/manage/assets/..%2Fmanage.html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert 'data-timezone="Europe/Madrid"' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert other.status_code == 404
