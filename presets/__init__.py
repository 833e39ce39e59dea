"""The built-in scenario presets, one TOML file each, read through importlib.resources."""
