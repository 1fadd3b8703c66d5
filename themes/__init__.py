"""Textual themes as data, one TOML file per theme, shipped as package data (obs_tui.themes)."""
