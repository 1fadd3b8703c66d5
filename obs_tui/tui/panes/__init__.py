"""One widget per pane; each keeps its DEFAULT_CSS beside it."""

from obs_tui.tui.panes.base import Chart, DetailSpec, Pane
from obs_tui.tui.panes.carbon import CarbonPane
from obs_tui.tui.panes.power import PowerPane
from obs_tui.tui.panes.requests import RequestsPane
from obs_tui.tui.panes.slo import SloPane

PANES = (PowerPane, RequestsPane, SloPane, CarbonPane)

__all__ = ["PANES", "Chart", "DetailSpec", "Pane", "PowerPane", "RequestsPane", "SloPane", "CarbonPane"]
