"""vgp-tui: watch gradients vanish or explode, layer by layer, live in the terminal."""

__version__ = "0.1.0"
