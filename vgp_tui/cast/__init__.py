"""``vgp-tui cast``: a recording turned into a screencast, from the dashboard itself replaying it.

* :mod:`~vgp_tui.cast.asciicast`: the replay run in a pseudo-terminal, its output kept as an
  asciicast v2 file (``.cast``);
* :mod:`~vgp_tui.cast.image`: that asciicast as an animated GIF, WebP or PNG, by way of
* :mod:`~vgp_tui.cast.frames` (the screens a viewer saw, at a fixed frame rate),
  :mod:`~vgp_tui.cast.painter` (a screen of cells painted as a picture),
  :mod:`~vgp_tui.cast.shapes` (braille, blocks and box lines drawn to fill their cell) and
  :mod:`~vgp_tui.cast.palette` (one palette for all of a GIF's frames).

Nothing here imports Textual; the pictures' extra packages (pyte, Pillow, pymupdf-fonts) are imported
by the modules that use them, so the package itself costs nothing to import.
"""

# The limits the command line offers too: here, so that reading them imports nothing heavy.
IDLE_LIMIT = 2.0
"""Seconds: the longest pause a cast keeps by default (``--idle-limit``); a longer one is cut to it.

A cast is shared to be watched, often as a GIF that loops in a README or a chat: a stretch where the
recorded session sat still (a paused run, a slow restart, a minute looking at the result before
quitting) came out as that many seconds of frozen picture, which a viewer takes for a stuck GIF.
asciinema's recorder keeps pauses by default, but its documentation's example and most shared casts
set ``idle_time_limit`` to 2 or 3 s; agg uses 5 s. 2 s still reads as a pause (ten frames at 5 fps)
and is time enough to take in the frame; ``--idle-limit 0`` (or ``none``) keeps every pause as recorded."""
MIN_IDLE_LIMIT = 0.1
"""Seconds: the smallest limit taken. A shorter one would cut the ordinary gaps between the dashboard's
updates, speeding up the whole cast rather than its pauses (and under :data:`vgp_tui.cast.frames.BURST_GAP`
it would merge separate updates into one)."""
MAX_PIXELS = 12_000_000
"""The largest picture drawn, in pixels. Painting a frame takes about 54 MB a megapixel at its peak
(float32 colour planes the picture's size), and every distinct frame is kept until the file is written
(1 byte a pixel for a GIF, 3 for WebP and PNG): --size 1000x500 took 5.3 GB. 12 megapixels takes in
the widest terminal anyone shares (400x150 cells at the default 16 px font is 3600x2850 px, 10.3
megapixels; 0.55 GB to paint) and the default 120x40 up to --font-size 60; a larger one is refused
before the replay. (Measured as the peak resident memory around one ``CellPainter.paint`` of a screen
of random cells. WebP's 16383 px side limit cannot be reached under it, as --size stops at 1000x500.)"""
