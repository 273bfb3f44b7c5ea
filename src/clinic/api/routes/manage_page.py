"""The patient's page of one booking: /manage/{id}, where the emails' manage link leads.

It reads the manage token from the link's fragment and uses this API with it: the
booking's details, cancelling, and moving to a free slot. Its script and style are
the clinic's own files beside this module, and its Content-Security-Policy lets it
load and call this origin only.
"""

import html
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from clinic.settings import settings

router = APIRouter(include_in_schema=False)

PAGE_DIR = Path(__file__).resolve().parent.parent / "pages"
ASSETS = {"manage.js": "text/javascript", "manage.css": "text/css"}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Nothing on the page may load from, or send to, another origin."""


@cache
def _page() -> str:
    page = (PAGE_DIR / "manage.html").read_text()
    return page.replace("{timezone}", html.escape(settings.timezone))


@router.get("/manage/{booking_id}")
async def manage_page(booking_id: str) -> HTMLResponse:
    """The page of one booking; the booking itself is read by the page, with its token."""
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": POLICY,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/manage/assets/{name}")
async def manage_asset(name: str) -> FileResponse:
    """The page's script or style (nothing else in the folder is reachable)."""
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail="Not Found")
    return FileResponse(
        PAGE_DIR / name,
        media_type=ASSETS[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
