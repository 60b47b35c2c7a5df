"""Reading a Prometheus exposition (``/metrics``) back into values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from edgeproxy.http.metrics import Metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: {(name, sorted label pairs): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` in the exposition ``text``; 0 when absent."""
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def standalone() -> Metrics:
    """A ``Metrics`` registry of its own whose gauges read nothing (zeros): for a component tested
    without an app (an ``Optimiser``, a store)."""
    from edgeproxy.http.metrics import Metrics

    return Metrics(
        version="test",
        libvips="test",
        formats="",
        queue_depth=lambda: 0,
        utilization=lambda: 0,
        vips_memory=lambda: 0,
        dropped_renders=lambda: 0,
    )
