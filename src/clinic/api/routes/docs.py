"""The documentation sites, with no internet: Swagger UI at /docs, AsyncAPI at /asyncapi.

Their scripts and styles are npm's, pinned in ``docs-assets/`` and copied beside the
package at install time (``clinic.api.site_assets``); they are served from
``/docs/assets/``. Each page's Content-Security-Policy lets it load only from this
origin and run only its own inline start-up script, found by its hash, so nothing
on it can reach a third party. A page whose assets are missing answers 503 and says
which, never a blank page. ReDoc is not served: Swagger UI shows the same document.
"""

import base64
import functools
import hashlib
import html
import logging
import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from faststream.specification.asyncapi import get_asyncapi_html
from faststream.specification.base import Specification

from clinic.api import site_assets

log = logging.getLogger("clinic.api")
router = APIRouter(include_in_schema=False)

ASSETS_DIR = Path(__file__).resolve().parent.parent / site_assets.FOLDER
"""Where the installed assets are (a test points it at an empty folder)."""
ASSETS_URL = "/docs/assets"

SWAGGER_UI = ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css")
ASYNCAPI_UI = ("asyncapi/index.js", "asyncapi/default.min.css")
FAVICON = "swagger-ui/favicon-32x32.png"

_warned: set[str] = set()
"""Missing assets already logged: a page reloaded every second logs its warning once."""


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    """The HTTP API's interactive documentation (Swagger UI), on the local assets."""
    missing = _missing((*SWAGGER_UI, FAVICON))
    if missing:
        return _unavailable("API documentation (/docs)", missing)
    root = _root_path(request)
    return _page(_swagger_html(root, root + (request.app.openapi_url or "/openapi.json")))


@router.get("/asyncapi")
async def asyncapi_site(request: Request) -> Response:
    """The queues, exchanges and messages of the workers (AsyncAPI), on the local assets."""
    missing = _missing(ASYNCAPI_UI)
    if missing:
        return _unavailable("message documentation (/asyncapi)", missing)
    # The component validates the document with Ajv, which compiles its validators
    # with new Function(): the bundle does not start without 'unsafe-eval'.
    return _page(_asyncapi_html(_root_path(request)), compiles_code=True)


@router.get("/asyncapi.json")
async def asyncapi_json() -> Response:
    """The workers' AsyncAPI document, as JSON."""
    return Response(asyncapi_document().to_json(), media_type="application/json")


@router.get("/asyncapi.yaml")
async def asyncapi_yaml() -> Response:
    """The workers' AsyncAPI document, as YAML (what ``asyncapi.yaml`` holds)."""
    return Response(asyncapi_document().to_yaml(), media_type="application/yaml")


@router.get(ASSETS_URL + "/{name:path}")
async def asset(name: str) -> FileResponse:
    """One of the listed asset files (nothing else under the folder is reachable)."""
    path = ASSETS_DIR / name
    if name not in site_assets.FILES or not path.is_file():
        raise HTTPException(status_code=404, detail="Not Found")
    # Revalidated by its ETag on each load: the URL stays the same across upgrades.
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


@functools.cache
def asyncapi_document() -> Specification:
    """The AsyncAPI document of the workers, built once per process without any broker."""
    # The one import from the workers' package that the layering contract allows
    # (pyproject.toml): their app is built, never started, so the document is
    # exactly what `faststream docs gen clinic.handlers:app` writes to asyncapi.yaml.
    from clinic import handlers

    return handlers.app.schema.to_specification()


@functools.cache
def _swagger_html(root: str, openapi_url: str) -> str:
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title="clinic API",
        swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_UI[0]}",
        swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_UI[1]}",
        swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
        # Off: Swagger UI would send the document's URL to swagger.io to be validated.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return bytes(page.body).decode()


@functools.cache
def _asyncapi_html(root: str) -> str:
    page = get_asyncapi_html(
        asyncapi_document(),
        asyncapi_js_url=f"{root}{ASSETS_URL}/{ASYNCAPI_UI[0]}",
        asyncapi_css_url=f"{root}{ASSETS_URL}/{ASYNCAPI_UI[1]}",
        # No "try it out": its endpoint publishes to the real broker.
        try_it_out_path=None,
    )
    # FastStream's page links asyncapi.com's icons; an empty one asks for nothing.
    page = _ICON_LINKS.sub("", page)
    return page.replace("<head>", '<head>\n        <link rel="icon" href="data:,">', 1)


_ICON_LINKS = re.compile(r'[ \t]*<link rel="icon"[^>]*>\n?')
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_INLINE_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_EVAL = " 'unsafe-eval'"


def content_security_policy(page: str, compiles_code: bool = False) -> str:
    """Only this origin, plus the page's own inline scripts and styles by their hashes.

    ``compiles_code`` lets the page's own scripts turn text into code (``eval``); it
    still loads nothing from anywhere else.
    """

    def hashes(pattern: re.Pattern[str]) -> str:
        digests = (hashlib.sha256(text.encode()).digest() for text in pattern.findall(page))
        return "".join(f" 'sha256-{base64.b64encode(d).decode()}'" for d in digests)

    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self'{hashes(_INLINE_SCRIPT)}{_EVAL if compiles_code else ''}",
            f"style-src 'self'{hashes(_INLINE_STYLE)}",
            # data: is inline, never a request: Swagger UI's stylesheet draws icons so.
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _page(page: str, status_code: int = 200, compiles_code: bool = False) -> HTMLResponse:
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={
            "Content-Security-Policy": content_security_policy(page, compiles_code),
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _root_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _missing(names: tuple[str, ...]) -> list[str]:
    missing = [name for name in names if not (ASSETS_DIR / name).is_file()]
    for name in set(missing) - _warned:
        _warned.add(name)
        log.warning(
            "documentation asset %s is missing from %s: reinstall the clinic with npm on "
            "the PATH (pip install -e .) or build the image",
            name,
            ASSETS_DIR,
        )
    return missing


def _unavailable(site: str, missing: list[str]) -> HTMLResponse:
    """A 503 that says which assets are missing and how to install them."""
    items = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in missing)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>clinic: documentation not installed</title></head>
<body>
<h1>The {html.escape(site)} is not installed</h1>
<p>These files of the page are missing from the clinic's <code>docs_assets</code> folder:</p>
<ul>{items}</ul>
<p>They come from npm when the clinic is installed (pinned in <code>docs-assets/</code>).
Install it again with <code>npm</code> on the PATH (<code>pip install -e .</code> or
<code>pip install .</code>), or build the image (<code>docker compose build</code>),
which fetches them itself.</p>
</body>
</html>
"""
    return _page(page, status_code=503)
