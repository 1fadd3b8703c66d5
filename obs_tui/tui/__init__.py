"""The Textual console: four panes (power, requests, SLO, carbon) fed by engine Frames."""
