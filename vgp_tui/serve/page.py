"""The web page each visitor gets: a full-window terminal that textual-serve's own script connects.

We write the page instead of using textual-serve's: its page asks a font CDN for Roboto Mono (the
browser would reach out to a third party, and wait on it where there is no internet), and it builds
the websocket address from the address the server listens on, which is wrong behind an SSH tunnel
to another local port or when listening on 0.0.0.0. Here the address comes from the request, so the
page works under whatever name and port the browser used. The font is the copy textual-serve ships.

textual.js (textual-serve's) looks for ``.textual-terminal`` with the websocket address and font
size in data attributes, and marks ``body`` with ``-first-byte`` when the app has drawn and
``-closed`` when the session has ended; the styles below key on those.
"""

from __future__ import annotations

from html import escape

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="preload" href="{static}fonts/RobotoMono-VariableFont_wght.ttf" as="font" type="font/ttf" crossorigin>
<link rel="stylesheet" href="{static}css/xterm.css">
<style>
@font-face {{
  font-family: "Roboto Mono";
  src: url("{static}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
  font-weight: 100 700;
}}
html, body {{ margin: 0; height: 100%; background: #121212; overflow: hidden; }}
/* The terminal takes the whole window: xterm's fit addon sizes the grid from this box. */
.textual-terminal {{ position: absolute; inset: 0; opacity: 0; }}
body.-first-byte .textual-terminal {{ opacity: 1; }}
.note {{
  position: fixed; left: 0; right: 0; padding: 0.6em 1em; z-index: 10;
  font: 15px "Roboto Mono", monospace; color: #e0e0e0; background: #1f3140;
}}
.starting {{ top: 40%; text-align: center; background: none; }}
body.-first-byte .starting {{ display: none; }}
.ended {{ bottom: 0; display: none; }}
body.-closed .ended {{ display: block; }}
.ended a {{ color: #7fc8ff; }}
</style>
<script src="{static}js/textual.js"></script>
</head>
<body>
<div class="note starting">Starting the dashboard ({what})…</div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{websocket}" data-font-size="{font_size}"></div>
<div class="note ended">This session has ended. <a href="">Reload the page</a> to start again.</div>
</body>
</html>
"""


def render_page(*, title: str, what: str, websocket_url: str, static_url: str, font_size: int) -> str:
    """The page's HTML; every value is escaped (the title holds a file name the user chose)."""
    return _PAGE.format(title=escape(title), what=escape(what), websocket=escape(websocket_url),
                        static=escape(static_url), font_size=int(font_size))
