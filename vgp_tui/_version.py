"""The version of vgp-tui, in a module of its own so the engine can name it without importing the package
``__init__`` (which imports the engine lazily: a circle)."""

__version__ = "0.1.0"
