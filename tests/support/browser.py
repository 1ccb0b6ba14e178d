"""End-to-end: a real node (real Postgres) on a loopback port, and Debian's Chromium driven
by Playwright, with a y4m file played as the camera.

A missing Chromium or Playwright fails the tests (never skips them) and says what to install.
Screenshots of each run go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.embedded_pg import free_port
from server.http.pages import node_modules
from server.settings import Settings
from tests.support.node import ADMIN, EXAM_BODY, bearer

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTH, HEIGHT, FPS = 320, 240, 5
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # Background pages must keep their timers and sockets running like a real, visible tab.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def write_y4m(path: Path, rgb: np.ndarray, frames: int = 10) -> Path:
    """A short 320x240 I420 clip of one still picture (Chromium loops it as the camera)."""
    return write_y4m_scenes(path, [(rgb, frames)])


def write_y4m_scenes(path: Path, scenes: list[tuple[np.ndarray, int]]) -> Path:
    """A 320x240 I420 clip of still pictures, each shown for its number of frames (at `FPS`)."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb, frames in scenes:
            i420 = _i420(rgb)
            for _ in range(frames):
                out.write(b"FRAME\n")
                out.write(i420)
    return path


def _i420(rgb: np.ndarray) -> bytes:
    h, w = rgb.shape[:2]
    # Crop to 4:3 around the centre, then scale: the face stays undistorted.
    target = w * 3 // 4
    if h > target:
        top = (h - target) // 2
        rgb = rgb[top : top + target]
    small = cv2.resize(np.ascontiguousarray(rgb), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    return bytes(cv2.cvtColor(small, cv2.COLOR_RGB2YUV_I420).tobytes())


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import skimage.data
    except ImportError as exc:
        pytest.fail(f"scikit-image is needed for the camera picture ({exc}): pip install -e '.[dev]'", pytrace=False)
    return write_y4m(tmp_path_factory.mktemp("cam") / "astronaut.y4m", skimage.data.astronaut())  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def black_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(tmp_path_factory.mktemp("cam") / "black.y4m", np.zeros((HEIGHT, WIDTH, 3), np.uint8))


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("install chromium: apt-get install chromium", pytrace=False)
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.fixture(scope="session")
def vendor_ready() -> None:
    if node_modules() is None:
        pytest.fail("the Socket.IO browser client is missing: run ./install.sh (npm ci)", pytrace=False)


@dataclass
class Node:
    url: str
    http: aiohttp.ClientSession
    app: Any = None

    async def rest(self, method: str, path: str, body: Any = None, token: str = ADMIN) -> Any:
        async with self.http.request(method, self.url + path, json=body, headers=bearer(token)) as resp:
            data = await resp.json()
            assert resp.status < 300, (path, resp.status, data)
            return data

    async def room(self, exam: dict[str, Any] | None = None, seats: int = 50) -> dict[str, Any]:
        exam_data = await self.rest("POST", "/api/exams", exam or EXAM_BODY)
        room = await self.rest("POST", f"/api/exams/{exam_data['id']}/rooms", {"name": "Hall A", "seats": seats})
        room["exam"] = exam_data
        return dict(room)

    async def invites(self, room_id: str, names: list[str]) -> list[dict[str, Any]]:
        students = [{"id": f"s-{i}", "name": name} for i, name in enumerate(names)]
        data = await self.rest("POST", f"/api/rooms/{room_id}/invites", {"students": students})
        return list(data["invites"])

    async def teacher_token(self, rooms: list[str]) -> str:
        data = await self.rest(
            "POST", "/api/tokens", {"role": "teacher", "sub": "t-1", "name": "Ms Rivera", "rooms": rooms}
        )
        return str(data["token"])


@pytest.fixture
def e2e_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    # A test may change settings with @pytest.mark.parametrize("e2e_settings", [{...}], indirect=True).
    extra: dict[str, Any] = getattr(request, "param", {})
    return settings.replace(reconnect_grace_seconds=2.0, writer_flush_ms=5.0, **extra)


@pytest.fixture
async def node(e2e_settings: Settings, vendor_ready: None) -> AsyncIterator[Node]:
    app = create_app(e2e_settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        try:
            yield Node(str(server.make_url("")).rstrip("/"), http, app)
        finally:
            await server.close()


@contextlib.asynccontextmanager
async def node_at_public_url(settings: Settings) -> AsyncIterator[Node]:
    """A node whose public URL is its own address: the browser's Origin then passes the CSRF
    rules of cookie requests and sign-in (docs/accounts.md), so its port is chosen first."""
    port = free_port()
    app = create_app(settings.replace(public_url=f"http://127.0.0.1:{port}"))
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        try:
            yield Node(f"http://127.0.0.1:{port}", http, app)
        finally:
            await server.close()


@dataclass
class Browsers:
    """One Chromium per camera picture; each user gets their own context (own storage)."""

    chromium: str
    playwright: Any
    launched: dict[str, Any] = field(default_factory=dict)
    contexts: list[Any] = field(default_factory=list)

    async def context(
        self, camera: Path, *, locale: str | None = None, viewport: tuple[int, int] = (1280, 720), **options: Any
    ) -> Any:
        """A fresh context; `locale` sets the browser's languages (Accept-Language and
        navigator.languages), as a student's or teacher's own browser would."""
        key = str(camera)
        if key not in self.launched:
            self.launched[key] = await self.playwright.chromium.launch(
                executable_path=self.chromium,
                headless=True,
                args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"],
            )
        size = {"width": viewport[0], "height": viewport[1]}
        if locale:
            options["locale"] = locale
        context = await self.launched[key].new_context(viewport=size, **options)
        context.set_default_timeout(10_000)
        await context.grant_permissions(["camera"])
        self.contexts.append(context)
        return context


@pytest.fixture
async def browsers(chromium: str, node: Node) -> AsyncIterator[Browsers]:
    # Depends on `node` so that the browsers close first: a node shutting down with live
    # sockets would wait for them.
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(
            "Playwright is missing: pip install -e '.[dev]' (never `playwright install`: "
            "the tests use Debian's chromium)",
            pytrace=False,
        )
    async with async_playwright() as pw:
        env = Browsers(chromium, pw)
        try:
            yield env
        finally:
            for context in env.contexts:
                await context.close()
            for browser in env.launched.values():
                await browser.close()


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path
