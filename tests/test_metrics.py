"""Observability: /metrics values match what was done, a real Prometheus scrapes them, promtool
accepts our exposition and rules, access logs and request ids."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, make_client, signed

ROOT = Path(__file__).resolve().parent.parent
PHOTO = "giunchedi-portrait.jpg"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {tool} is missing (.ci/run installs Debian's prometheus)")
        pytest.skip(f"{tool} not installed (apt-get install prometheus)")
    return path


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def exercise(client: httpx.Client) -> None:
    """3 AVIF, 1 WebP, 1 repeat of an AVIF URL (original cache hit), 1 bad signature, 1 bad option, 1 404."""
    for width in (100, 101, 102):
        assert client.get(signed(f"/w:{width}/demo/{PHOTO}"), headers={"Accept": "image/avif"}).status_code == 200
    assert client.get(signed(f"/w:103/demo/{PHOTO}"), headers={"Accept": "image/webp"}).status_code == 200
    assert client.get(signed(f"/w:100/demo/{PHOTO}"), headers={"Accept": "image/avif"}).status_code == 200
    assert client.get("/AAAA/w:100/demo/" + PHOTO).status_code == 403
    assert client.get(signed(f"/w:abc/demo/{PHOTO}")).status_code == 400
    assert client.get(signed("/w:100/demo/zz-secret-key.jpg")).status_code == 404


def test_metric_values_match_what_was_done(corpus: Path):
    with make_client({"demo": str(corpus)}) as client:
        exercise(client)
        text = client.get("/metrics").text
    assert value(text, "edgeproxy_requests_total", status_class="2xx", format="avif") == 4
    assert value(text, "edgeproxy_requests_total", status_class="2xx", format="webp") == 1
    assert value(text, "edgeproxy_requests_total", status_class="4xx", format="none") == 3
    assert value(text, "edgeproxy_errors_total", category="signature") == 1
    assert value(text, "edgeproxy_errors_total", category="parse") == 1
    assert value(text, "edgeproxy_errors_total", category="origin") == 1
    assert value(text, "edgeproxy_errors_total", category="overload") == 0
    assert value(text, "edgeproxy_cache_lookups_total", cache="original", outcome="miss") == 2  # photo + 404 key
    assert value(text, "edgeproxy_cache_lookups_total", cache="original", outcome="hit") == 4
    assert value(text, "edgeproxy_cache_lookups_total", cache="variant", outcome="miss") == 5
    assert value(text, "edgeproxy_origin_bytes_total", origin="demo") == (corpus / PHOTO).stat().st_size
    assert value(text, "edgeproxy_bytes_in_total") == 5 * (corpus / PHOTO).stat().st_size
    assert 0 < value(text, "edgeproxy_bytes_out_total") < value(text, "edgeproxy_bytes_in_total")
    assert value(text, "edgeproxy_request_duration_seconds_count", status_class="2xx") == 5
    for stage in ("fetch", "queue", "decode", "transform", "encode"):
        assert value(text, "edgeproxy_stage_duration_seconds_count", stage=stage) >= 5, stage
    assert value(text, "edgeproxy_requests_in_flight") == 0
    assert value(text, "edgeproxy_worker_utilization") == 0
    assert value(text, "process_resident_memory_bytes") > 10_000_000
    build = [k for k in samples(text) if k[0] == "edgeproxy_build_info"]
    assert len(build) == 1 and ("formats", "avif,webp,jpeg,png,gif") in build[0][1]
    assert "zz-secret-key" not in text and "w:abc" not in text  # no user input in any label


def test_promtool_accepts_exposition_and_rules(corpus: Path, tmp_path: Path):
    promtool = need("promtool")
    with make_client({"demo": str(corpus)}) as client:
        exercise(client)
        text = client.get("/metrics").text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = subprocess.run([promtool, "check", "rules", str(ROOT / "config/prometheus/edgeproxy-rules.yml")],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run([promtool, "check", "config", str(ROOT / "config/prometheus/prometheus.yml")],
                            capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr


def test_real_prometheus_scrapes_the_values(corpus: Path, tmp_path: Path):
    prometheus = need("prometheus")
    metrics_port = free_port()
    with make_client({"demo": str(corpus)}, metrics_bind=f"127.0.0.1:{metrics_port}") as client:
        exercise(client)
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            f"rule_files: [{ROOT / 'config/prometheus/edgeproxy-rules.yml'}]\n"
            "scrape_configs:\n"
            "  - job_name: edgeproxy-main\n"
            f"    static_configs: [{{targets: ['{client.base_url.host}:{client.base_url.port}']}}]\n"
            "  - job_name: edgeproxy-bind\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            api = f"http://127.0.0.1:{port}/api/v1/query"

            def query(expr: str) -> list:
                try:
                    body = httpx.get(api, params={"query": expr}, timeout=5).json()
                except (httpx.HTTPError, json.JSONDecodeError):
                    return []
                return body.get("data", {}).get("result", []) if body.get("status") == "success" else []

            deadline = time.monotonic() + 60
            avif = []
            while time.monotonic() < deadline:
                avif = query('edgeproxy_requests_total{format="avif",status_class="2xx"}')
                if len(avif) == 2:  # scraped through both the main port and metrics_bind
                    break
                time.sleep(0.5)
            assert sorted(r["metric"]["job"] for r in avif) == ["edgeproxy-bind", "edgeproxy-main"]
            assert all(float(r["value"][1]) == 4 for r in avif)
            signature = query('edgeproxy_errors_total{category="signature",job="edgeproxy-main"}')
            assert float(signature[0]["value"][1]) == 1
            assert query('up{job=~"edgeproxy.*"} == 1') and len(query('up{job=~"edgeproxy.*"} == 1')) == 2
        finally:
            proc.terminate()
            proc.wait(10)


def test_request_id_is_echoed_and_access_log_is_structured(corpus: Path, caplog):
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    with make_client({"demo": str(corpus)}) as client:
        ok = client.get(signed(f"/w:64/f:png/demo/{PHOTO}"), headers={"X-Request-ID": "abc-123"})
        bad = client.get("/AAAA/w:64/demo/" + PHOTO, headers={"X-Request-ID": "bad id with spaces"})
    assert ok.headers["x-request-id"] == "abc-123"
    assert len(bad.headers["x-request-id"]) == 32  # replaced by a fresh UUID
    records = {r.fields["request_id"]: r.fields for r in caplog.records if hasattr(r, "fields")}
    line = records["abc-123"]
    assert (line["status"], line["format"], line["origin"], line["cache"], line["error"]) == (200, "png", "demo",
                                                                                          "miss", None)
    assert line["bytes_out"] == len(ok.content) and line["bytes_in"] == (corpus / PHOTO).stat().st_size
    assert set(line["stages_ms"]) == {"fetch", "queue", "decode", "transform", "encode"}
    assert records[bad.headers["x-request-id"]]["error"] == "signature"


def test_json_formatter_writes_one_object_per_line():
    from edgeproxy.logs import JsonFormatter

    record = logging.LogRecord("edgeproxy.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"status": 200, "request_id": "x"}
    data = json.loads(JsonFormatter().format(record))
    assert data["status"] == 200 and data["message"] == "request" and data["time"].endswith("Z")


def test_readyz_checks_encoders(client):
    body = client.get("/readyz").json()
    assert body["encoders"] == {"avif": True, "webp": True, "jpeg": True, "png": True, "gif": True}
