"""textual-serve's Server with vgp-tui's page, a cap on sessions and our own start-up lines.

Each websocket (one per browser tab) makes textual-serve start ``command`` in a subprocess that
Textual's web driver draws into; the session lasts as long as the tab. Only this module imports
textual-serve (and aiohttp), so the rest of vgp-tui works without the ``serve`` extra.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncGenerator, Callable

from aiohttp import web
from aiohttp.web_runner import GracefulExit
from textual_serve.app_service import AppService
from textual_serve.download_manager import DOWNLOAD_CHUNK_SIZE, DownloadManager
from textual_serve.server import Server, to_int

from vgp_tui.serve.page import render_page

log = logging.getLogger("textual-serve")

STOP_SECONDS = 5.0
"""How long a tab's process may take to quit at each step of :meth:`TabSession.stop`."""

CHUNK_WAIT_SECONDS = 120.0
"""How long a download waits for a chunk from a running tab's process (:class:`PatientDownloads`)."""

PROCESS_CHECK_SECONDS = 1.0
"""How often a waiting download looks whether the tab's process is still there."""


class TabSession(AppService):
    """textual-serve's session of one tab, whose :meth:`stop` makes sure the tab's process ends.

    textual-serve asks the app to quit and waits for its output to end; but its wait also ends when
    the output can no longer be sent to the closed tab, and an app asked while it was still starting
    (a tab closed or reloaded within a second or two) went on drawing for nobody, a core's worth of
    CPU, its session counted closed, and Ctrl+C of the server then hung on it."""

    async def stop(self) -> None:
        process = self._process
        try:
            await asyncio.wait_for(super().stop(), STOP_SECONDS)
        except asyncio.TimeoutError:
            if self._task is not None:
                self._task.cancel()
                self._task = None
        if process is None or process.returncode is not None:
            return
        # Its input goes: the app takes that as the server gone and quits (dashboard's
        # _quit_when_the_server_goes), its last output read meanwhile (unread, a full pipe held its
        # shutdown); if it is still there after that, it is ended.
        draining = asyncio.create_task(_drain(process.stdout)) if process.stdout is not None else None
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except asyncio.TimeoutError:
            log.warning("a tab's process did not quit in %g s: killed", 2 * STOP_SECONDS)
            process.kill()
            await process.wait()
        finally:
            if draining is not None:
                draining.cancel()


class PatientDownloads(DownloadManager):
    """textual-serve's downloads (ctrl+s: the SVG the visitor's browser opens), waiting for each chunk
    as long as the tab's process runs, up to :data:`CHUNK_WAIT_SECONDS`.

    textual-serve gives up after 4 s without a chunk, and its own queue accounting then fails, so the
    browser's page never finished loading (it stayed blank). A tab's process answers that late on a
    loaded machine: the dashboard is drawing, a training runs beside it (in CI, with a CPU hog beside
    two tabs and the browser on two cores, once in three runs). A tab closed meanwhile ends the
    download at once, as in textual-serve (its session puts an end marker in the queue)."""

    async def download(self, delivery_key: str) -> AsyncGenerator[bytes, None]:
        download = self._active_downloads[delivery_key]
        service = download.app_service
        request = {"type": "deliver_chunk_request", "key": delivery_key, "size": DOWNLOAD_CHUNK_SIZE,
                   "name": download.name}
        try:
            while await service.send_meta(request):
                chunk = await _next_chunk(download.incoming_chunks, service)
                if not chunk:  # the end of the file, a closed tab, or a tab's process gone
                    return
                yield chunk
            log.warning("a download stopped: its tab's process could not be asked for more")
        finally:
            self._active_downloads.pop(delivery_key, None)


async def _next_chunk(chunks: asyncio.Queue[bytes | None], service: AppService) -> bytes | None:
    """The next chunk from ``service``'s process; None where it ends before sending one or lets
    :data:`CHUNK_WAIT_SECONDS` pass without one."""
    waited = 0.0
    while waited < CHUNK_WAIT_SECONDS:
        try:
            return await asyncio.wait_for(chunks.get(), PROCESS_CHECK_SECONDS)
        except asyncio.TimeoutError:
            waited += PROCESS_CHECK_SECONDS
            process = service._process
            if process is None or process.returncode is not None:
                log.warning("a download stopped: its tab's process ended before sending it")
                return None
    log.warning("a download stopped: its tab's process sent nothing for %g s", CHUNK_WAIT_SECONDS)
    return None


async def _drain(stream: asyncio.StreamReader) -> None:
    """Read ``stream`` to its end, for no one."""
    while await stream.read(1 << 16):
        pass


class DashboardServer(Server):
    """Serves ``command`` to at most ``max_sessions`` tabs at once.

    A tab beyond the cap gets ``full_message`` written into its terminal and its websocket closed,
    so the visitor reads why (the page then says the session ended and offers a reload); no process
    is started for it.
    """

    def __init__(self, command: str, *, host: str, port: int, title: str, what: str, max_sessions: int,
                 full_message: str, on_ready: Callable[[], None]) -> None:
        # exec: the shell textual-serve starts the command with becomes the tab's process, so that
        # ending the process (TabSession.stop) ends the app, not a shell that leaves it behind.
        super().__init__(f"exec {command}", host=host, port=port, title=title)
        self.download_manager = PatientDownloads()
        self.what = what
        self.max_sessions = max_sessions
        self.full_message = full_message
        self.on_ready = on_ready
        self._open: dict[int, web.Request] = {}
        """The tabs' websocket requests by id (a request is not hashable): the cap counts them, and
        :meth:`on_shutdown` drops their connections."""
        self.stopped_by: signal.Signals | None = None
        """The signal that stopped the server (SIGINT or SIGTERM), once :meth:`serve` has returned."""

    def serve(self, debug: bool = False) -> None:
        """As textual-serve's ``Server.serve`` (1.1), but each stop signal is noted in :attr:`stopped_by`:
        its handler, ``request_exit``, is not told which signal came, and the server exited with status 0
        on Ctrl+C and SIGTERM alike, where a shell or a service manager expects 130 and 143."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(stop, self._stop, stop)
            except NotImplementedError:  # (no signal handlers on a Windows loop: Ctrl+C is KeyboardInterrupt)
                pass
        # The same clean stop as textual-serve's: GracefulExit ends run_app, which runs on_shutdown (the
        # tabs' connections dropped, so their processes quit) and the cleanup before it returns.
        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                    print=lambda *args: None)

    def _stop(self, stop: signal.Signals) -> None:
        self.stopped_by = stop
        raise GracefulExit()

    @property
    def sessions(self) -> int:
        """Tabs served now."""
        return len(self._open)

    def initialize_logging(self) -> None:
        super().initialize_logging()
        # One line per session (below) says who is watching; aiohttp's line per request (page, script,
        # font, stylesheet, websocket) would bury it.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        # A tab's shell can end just after the loop closed on Ctrl+C; asyncio's child watcher then
        # warns about the closed loop, which is no news to someone who has just stopped the server.
        logging.getLogger("asyncio").setLevel(logging.ERROR)

    async def on_startup(self, app: web.Application) -> None:
        # Instead of textual-serve's logo and "Serving 'python -m ...'": the caller prints what the
        # user needs (the address, the SSH hint, what listening publicly exposes).
        app.on_cleanup.append(self._collect_tabs)
        self.on_ready()

    async def _collect_tabs(self, app: web.Application) -> None:
        # The stopped tabs' subprocess transports, collected while the loop still runs: collected
        # after aiohttp closed it, each printed "Exception ignored in BaseSubprocessTransport.__del__:
        # RuntimeError: Event loop is closed" on the way out of Ctrl+C.
        import gc

        gc.collect()

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        # The websocket goes back to the host and port the browser used (see page.py for why).
        # Behind a TLS proxy (the docs' advice for --public) the request reaching here is plain HTTP:
        # the proxy's X-Forwarded-Proto says what the browser used, and an https page may not open ws://.
        secure = request.secure or request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip() == "https"
        scheme = "wss" if secure else "ws"
        html = render_page(title=self.title, what=self.what, websocket_url=f"{scheme}://{request.host}/ws",
                           static_url="/static/", font_size=to_int(request.query.get("fontsize", "16"), 16))
        return web.Response(text=html, content_type="text/html")

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        if not web.WebSocketResponse().can_prepare(request).ok:
            # A plain request (a probe, curl): aiohttp's refusal was a 430-line traceback in the terminal.
            log.info("refused a request for /ws from %s: not a websocket", request.remote)
            return web.Response(status=400, text="the dashboard's websocket: open / in a browser\n")
        if self.sessions >= self.max_sessions:
            log.info("refused a session from %s: all %d in use", request.remote, self.max_sessions)
            websocket = web.WebSocketResponse()
            await websocket.prepare(request)
            # Terminal text: textual.js writes binary frames into the page's terminal as they come.
            await websocket.send_bytes(self.full_message.replace("\n", "\r\n").encode("utf-8"))
            await websocket.close()
            return websocket
        # Counted from here until textual-serve has stopped the tab's process (its handler returns
        # only then), so the cap holds for processes, not just for open tabs.
        self._open[id(request)] = request
        log.info("session opened from %s (%d of at most %d)", request.remote, self.sessions, self.max_sessions)
        try:
            return await self._serve_tab(request)
        finally:
            self._open.pop(id(request), None)
            log.info("session closed (%d open)", self.sessions)

    async def _serve_tab(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's ``handle_websocket`` (1.1), with a :class:`TabSession` for its AppService."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        session: TabSession | None = None
        try:
            await websocket.prepare(request)
            session = TabSession(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                 close=websocket.close, download_manager=self.download_manager, debug=self.debug)
            await session.start(width, height)
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:
            log.exception(error)
        finally:
            if session is not None:
                await session.stop()
        return websocket

    async def on_shutdown(self, app: web.Application) -> None:
        # Ctrl+C or SIGTERM: drop every tab's connection, so that textual-serve tells each tab's
        # process to quit at once. aiohttp would otherwise wait for the websockets to time out: the
        # server and its tabs took 16 s to stop.
        for request in list(self._open.values()):
            if request.transport is not None:
                request.transport.close()
