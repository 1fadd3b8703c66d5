"""Screens pushed over the four panes: help, a row's detail, and the too-small notice."""
