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
