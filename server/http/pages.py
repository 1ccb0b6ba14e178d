"""The browser apps: the student page, the teacher dashboard, editor and review pages.

Plain HTML, ES modules and CSS under `server/static/`, served by the node itself (no build
step, no front-end server). The one third-party script, the Socket.IO browser client, comes
from npm through the top-level `package.json` (installed by `./install.sh`) and is served
from `node_modules` at `/vendor/`. Every response carries the same security headers; the
Content-Security-Policy allows no inline script or style, so pages keep all code in files.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from core.vocabulary import app_vocabulary
from rooms.errors import RoomsError
from rooms.review import vocabulary as review_vocabulary
from rooms.roles import vocabulary as role_vocabulary
from server.keys import ATTEMPTS, SETTINGS
from server.settings import Settings

# This module is server/http/pages.py: the apps are in server/static/, package.json at the top.
STATIC = Path(__file__).resolve().parents[1] / "static"
_REPO = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=()",
}


@functools.lru_cache(maxsize=8)
def content_security_policy(public_url: str) -> str:
    """The pages' CSP: scripts, styles and connections only to this node.

    `connect-src` names the node's own origin from the public URL (https: and wss:, or
    http: and ws:) rather than any ws:/wss: host, so an injected script could not open a
    socket elsewhere; 'self' stays for the address the browser actually used (CSP 3 lets
    it match the same host's ws:/wss: too)."""
    url = urllib.parse.urlsplit(public_url)
    netloc = url.netloc.rpartition("@")[2].lower()
    connect = "'self'"
    if url.scheme in ("http", "https") and netloc:
        socket_scheme = "wss" if url.scheme == "https" else "ws"
        connect += f" {url.scheme}://{netloc} {socket_scheme}://{netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"media-src 'self' blob:; connect-src {connect}; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    )


# url path -> HTML file under static/
PAGES = {
    "/exam/": "exam/index.html",
    "/teacher/": "teacher/index.html",
    "/teacher/editor.html": "teacher/editor.html",
    "/teacher/review.html": "teacher/review.html",
    "/teacher/queue.html": "teacher/queue.html",
    "/teacher/results.html": "teacher/results.html",
    "/teacher/grading.html": "teacher/grading.html",
    "/teacher/signin.html": "teacher/signin.html",
    "/teacher/account.html": "teacher/account.html",
    "/teacher/import.html": "teacher/import.html",
    "/teacher/lti.html": "teacher/lti.html",  # step 11: LTI platforms (admins; docs/lti.md)
    "/teacher/setup": "teacher/setup.html",
}
# Served from node_modules; a fixed list, so nothing else there is reachable.
VENDOR = {
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
    "socket.io.esm.min.js.map": "socket.io-client/dist/socket.io.esm.min.js.map",
}
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".map": "application/json",
    ".json": "application/json",  # the message catalogs, static/i18n/*.json
    ".html": "text/html",
    ".ico": "image/x-icon",
}
MISSING_VENDOR = (
    "The browser apps need the Socket.IO client from npm, which is not installed.\n"
    "Run ./install.sh in the project directory (it runs `npm ci`), then reload this page.\n"
)


def node_modules() -> Path | None:
    """Where `npm ci` put the packages: next to package.json in a source tree, or the cwd."""
    for root in (_REPO, Path.cwd()):
        candidate = root / "node_modules"
        if (candidate / VENDOR["socket.io.esm.min.js"]).is_file():
            return candidate
    return None


def secure(response: web.StreamResponse, settings: Settings) -> web.StreamResponse:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = content_security_policy(settings.base_url)
    return response


def _file(request: web.Request, path: Path, *, cache: str = "no-cache") -> web.StreamResponse:
    content_type = _TYPES.get(path.suffix, "application/octet-stream")
    response = web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": cache})
    return secure(response, request.app[SETTINGS])


def _missing_vendor(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=503, text=MISSING_VENDOR, content_type="text/plain")
    return secure(response, request.app[SETTINGS])


# Step 13 B (speaking). Headers leave before the page knows its exam (the invite token stays in
# the fragment), so the exam page is served with `microphone=()` and a speaking exam's page
# reloads itself as /exam/?mic=<exam id>: the server opens the microphone for that address only
# when the exam named there asks for speaking. Anyone may ask for such an address; what it
# grants is the right to *ask* the student for a microphone on a page whose consent screen
# says so, and only for exams that analyse speech (docs/privacy.md, "Microphone").
MIC_QUERY = "mic"
MIC_POLICY = "camera=(self), microphone=(self)"


async def _exam_listens(request: web.Request, exam_id: str) -> bool:
    try:
        # Through the attempts' exam cache: a hall of students loading the page costs one query.
        exam = await request.app[ATTEMPTS].exam(exam_id)
    except RoomsError:
        # A malformed or unknown id, or the database not open: the page works, without microphone.
        return False
    except Exception:
        # Postgres lost mid-run (asyncpg's and the socket's own errors): the same, and say so once.
        logger.warning(
            "cannot tell whether exam %.40r listens for speech; page served without microphone", exam_id, exc_info=True
        )
        return False
    return exam.rules.analysis.speaking_for()


def _page(relative: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if node_modules() is None:
            return _missing_vendor(request)
        response = _file(request, STATIC / relative)
        exam_id = request.query.get(MIC_QUERY) if relative == PAGES["/exam/"] else None
        if exam_id and await _exam_listens(request, exam_id):
            response.headers["Permissions-Policy"] = MIC_POLICY
        return response

    return handler


async def static_file(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"]
    path = (STATIC / relative).resolve()
    # Only files inside static/, and never a path that climbs out of it.
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in _TYPES:
        raise web.HTTPNotFound()
    return _file(request, path)


async def vendor_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in VENDOR:
        raise web.HTTPNotFound()
    modules = node_modules()
    if modules is None:
        return _missing_vendor(request)
    return _file(request, modules / VENDOR[name], cache="public, max-age=3600")


async def app_config(request: web.Request) -> web.Response:
    """What the pages need to know: ICE servers for WebRTC, the consent version, and the
    vocabulary (signal kinds with their labels and weights, analysis bounds, room roles and
    what each may do).

    Public (the student page reads it before it has a token) and free of secrets: ICE server
    URLs only, TURN credentials are minted per attempt elsewhere. Cacheable for a minute: it
    changes only when the node restarts with other settings or code.
    """
    settings = request.app[SETTINGS]
    ice = [{"urls": list(settings.ice_servers)}] if settings.ice_servers else []
    body = {
        "ice_servers": ice,
        "consent_version": CONSENT_VERSION,
        "languages": shipped_languages(),
        **app_vocabulary(),
        **role_vocabulary(),
        **review_vocabulary(),
    }
    response = web.json_response(body)
    response.headers["Cache-Control"] = f"public, max-age={APP_CONFIG_MAX_AGE}"
    secure(response, settings)
    return response


APP_CONFIG_MAX_AGE = 60


@functools.lru_cache(maxsize=1)
def shipped_languages() -> list[dict[str, str]]:
    """The pages' catalogs (static/i18n/<id>.json): id, own name and direction, for a picker.
    Adding a language is adding its catalog: this list follows by itself."""
    languages = []
    for path in sorted((STATIC / "i18n").glob("*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        languages.append(
            {"id": path.stem, "name": meta.get("_meta.name", path.stem), "dir": meta.get("_meta.dir", "ltr")}
        )
    return languages


# Bump when the consent text in static/exam/index.html changes: joins record this version.
CONSENT_VERSION = "2026-12-v2"  # v2: the microphone line of speaking exams


async def error_texts(request: web.Request) -> web.Response:
    """The person's text of every error code in one language, from the server's gettext catalog
    (server/http/messages.py): the pages show Socket.IO error acks with it, so the words of an
    error are kept in one place for the REST answers and the pages alike."""
    from server.http.messages import catalogs

    texts = catalogs().get(request.match_info["lang"])
    if texts is None:
        raise web.HTTPNotFound()
    response = web.json_response(texts)
    response.headers["Cache-Control"] = f"public, max-age={APP_CONFIG_MAX_AGE}"
    secure(response, request.app[SETTINGS])
    return response


def _redirect(target: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        # Keep the query string (?room=…); the fragment (#token=…) stays in the browser.
        location = target + (f"?{request.query_string}" if request.query_string else "")
        raise web.HTTPFound(location)

    return handler


def add_pages(app: web.Application) -> None:
    for url, relative in PAGES.items():
        app.router.add_get(url, _page(relative))
    app.router.add_get("/", _redirect("/teacher/"))
    app.router.add_get("/exam", _redirect("/exam/"))
    app.router.add_get("/teacher", _redirect("/teacher/"))
    app.router.add_get("/static/{path:.+}", static_file)
    app.router.add_get("/vendor/{name}", vendor_file)
    app.router.add_get("/app-config.json", app_config)
    app.router.add_get("/i18n/errors/{lang:[a-z]{2,3}}.json", error_texts)


__all__ = [
    "APP_CONFIG_MAX_AGE",
    "CONSENT_VERSION",
    "MIC_POLICY",
    "MIC_QUERY",
    "SECURITY_HEADERS",
    "add_pages",
    "content_security_policy",
]
