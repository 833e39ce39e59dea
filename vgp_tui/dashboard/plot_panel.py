"""A plotext plot that is built once per change and kept as strips: what every plot panel is made of.

textual-plotext's ``PlotextPlot`` rebuilds its figure on every render, and that has two problems here:

* plotext's build is not repeatable. It applies a log scale to the stored data in place and appends
  to the legend, so building the same figure twice (Textual renders again after a resize, a theme
  change or a screen popped over the plot) draws log(log(y)) or raises ``IndexError`` and takes the
  app down. So every build here starts from an empty figure that ``draw`` fills from the panel's
  own state.
* it is the dashboard's largest cost, and the UI shares the GIL with the training thread. A build
  costs about 7 ms. Turning the ANSI output into a Rich ``Text`` and then into Textual ``Content``
  costs about as much again. Here the output is cut into strips directly, with one cached style per
  distinct escape sequence, and the strips are kept until the data, the size or the theme changes.
  A render that finds nothing changed is then a list lookup.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


@lru_cache(maxsize=512)
def sgr_style(codes: str) -> Style:
    """The Rich style selected by the SGR parameters ``codes`` (all of them since the last reset).

    Rich's own decoder interprets them, once per distinct sequence; plotext emits only a handful.
    """
    if not codes:
        return Style.null()
    spans = Text.from_ansi(f"\x1b[{codes}mx").spans
    style = spans[0].style if spans else Style.null()
    return style if isinstance(style, Style) else Style.parse(style)


def ansi_strips(output: str, width: int) -> list[Strip]:
    """Each line of ``output`` (text with SGR colour codes, as plotext builds it) as a Strip exactly
    ``width`` cells wide, with runs of one style merged into one segment."""
    strips = []
    lines = output.split("\n")
    if lines[-1] == "":
        lines.pop()  # plotext ends its last line with a newline too
    for line in lines:
        segments: list[Segment] = []
        codes = ""
        position = 0
        last_style: Style | None = None
        for match in _SGR.finditer(line):
            if match.start() > position:
                style = sgr_style(codes)
                text = line[position : match.start()]
                if style is last_style:
                    segments[-1] = Segment(segments[-1].text + text, style)
                else:
                    segments.append(Segment(text, style))
                    last_style = style
            params = match.group(1)
            if params in ("", "0"):
                codes = ""
            elif params.startswith("0;"):
                codes = params[2:]
            else:
                codes = f"{codes};{params}" if codes else params
            position = match.end()
        if position < len(line):
            segments.append(Segment(line[position:], sgr_style(codes)))
        strips.append(Strip(segments).adjust_cell_length(width))
    return strips


class PlotPanel(PlotextPlot):
    """A plotext plot drawn by :meth:`draw` on an empty figure, rebuilt only after :meth:`redraw` or
    when its size or theme changed."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._strips: list[Strip] = []
        self._built_for: object = None

    def draw(self, plt: Plot) -> None:
        """Plot the panel's data on ``plt`` (an empty figure)."""
        raise NotImplementedError

    def redraw(self) -> None:
        """The data changed: build the figure again at the next render."""
        self._built_for = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (width, height, self.app.theme, self.theme)
        if key != self._built_for:
            self._built_for = key
            self._strips = self._build(width, height) if width and height else []
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width)

    def _build(self, width: int, height: int) -> list[Strip]:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.draw(plt)
        plt.plotsize(width, height)
        # textual-plotext's own render does these two through private names (plotsize alone does not
        # always take; its "auto" theme follows the app's); without them, a plain plotext theme.
        set_size = getattr(plt, "_set_size", None)
        if set_size is not None:
            set_size(width, height)
        theme_name = getattr(self, "_get_plotext_theme_name", None)
        plt.theme(theme_name(self.app.theme) if theme_name is not None else "clear")
        return ansi_strips(plt.build(), width)
