"""Recorded frames as OpenMetrics text with timestamps, for `promtool tsdb
create-blocks-from openmetrics`: an incident's history into Prometheus and Grafana.

The metrics are the exporter's own (exporter.FrameCollector, the same names, labels and
rounding), one sample per recorded frame. OpenMetrics wants every family's samples
together, so the frames are collected first and written family by family, each series in
time order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample

from obs_tui.exporter import FrameCollector
from obs_tui.history.document import frame_from_json


class _Families:
    def __init__(self) -> None:
        self.families: dict[str, Any] = {}

    def add(self, family: Any, taken_at: float) -> None:
        have = self.families.get(family.name)
        if have is None:
            have = self.families[family.name] = family
            have.samples = []
        have.samples.extend(Sample(s.name, s.labels, s.value, taken_at, s.exemplar) for s in family.samples)

    def collect(self) -> Iterator[Any]:
        for family in self.families.values():
            # each series in time order (frames came in order; a stable sort keeps it)
            family.samples.sort(key=lambda s: (s.name, sorted(s.labels.items())))
            yield family

    def describe(self) -> Iterator[Any]:
        return iter(())


def _at(taken_at: float) -> Callable[[], float]:
    """A clock stopped at the frame's time: the collector dates its samples with it."""
    return lambda: taken_at


def openmetrics(frames: Iterable[tuple[float, dict]], top_processes: int = 20) -> bytes:
    """The text for frames given as (taken_at, document), oldest first."""
    families = _Families()
    for taken_at, doc in frames:
        frame = frame_from_json(doc, taken_at)
        collector = FrameCollector(top_processes, clock=_at(taken_at))
        collector.publish(frame)
        for family in collector.collect():
            families.add(family, round(taken_at, 3))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(families)
    return generate_latest(registry)
