"""Observability: /metrics values match what was done, a real Prometheus scrapes them, promtool
accepts our exposition and rules, access logs and request ids."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from testkit.app import make_client, signed
from testkit.env import EXTRAS, ROOT, require_tool
from testkit.metrics import samples, value
from testkit.net import free_port

PHOTO = "photo.jpg"  # the synthetic library's 800 x 533 JPEG


def need(tool: str) -> str:
    return require_tool(tool, "apt-get install prometheus; .ci/run installs Debian's prometheus")


def exercise(client: httpx.Client) -> None:
    """3 AVIF, 1 WebP, 1 repeat of an AVIF URL (original cache hit), 1 bad signature, 1 bad option, 1 404."""
    for width in (100, 101, 102):
        assert client.get(signed(f"/w:{width}/demo/{PHOTO}"), headers={"Accept": "image/avif"}).status_code == 200
    assert client.get(signed(f"/w:103/demo/{PHOTO}"), headers={"Accept": "image/webp"}).status_code == 200
    assert client.get(signed(f"/w:100/demo/{PHOTO}"), headers={"Accept": "image/avif"}).status_code == 200
    assert client.get("/AAAA/w:100/demo/" + PHOTO).status_code == 403
    assert client.get(signed(f"/w:abc/demo/{PHOTO}")).status_code == 400
    assert client.get(signed("/w:100/demo/zz-secret-key.jpg")).status_code == 404


@pytest.mark.extras  # the formats counted include jxl with the [jxl] extra
def test_metric_values_match_what_was_done(photos: Path):
    with make_client({"demo": str(photos)}) as client:
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
    assert value(text, "edgeproxy_origin_bytes_total", origin="demo") == (photos / PHOTO).stat().st_size
    assert value(text, "edgeproxy_bytes_in_total") == 5 * (photos / PHOTO).stat().st_size
    assert 0 < value(text, "edgeproxy_bytes_out_total") < value(text, "edgeproxy_bytes_in_total")
    assert value(text, "edgeproxy_request_duration_seconds_count", status_class="2xx") == 5
    for stage in ("fetch", "queue", "decode", "transform", "encode"):
        assert value(text, "edgeproxy_stage_duration_seconds_count", stage=stage) >= 5, stage
    assert value(text, "edgeproxy_requests_in_flight") == 0
    assert value(text, "edgeproxy_worker_utilization") == 0
    assert value(text, "process_resident_memory_bytes") > 10_000_000
    build = [k for k in samples(text) if k[0] == "edgeproxy_build_info"]
    formats = "avif,webp,jpeg,png,gif" + (",jxl" if EXTRAS["jxl"] else "")
    assert len(build) == 1 and ("formats", formats) in build[0][1]
    assert "zz-secret-key" not in text and "w:abc" not in text  # no user input in any label


def test_promtool_accepts_exposition_and_rules(photos: Path, tmp_path: Path):
    promtool = need("promtool")
    with make_client({"demo": str(photos)}) as client:
        exercise(client)
        text = client.get("/metrics").text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = subprocess.run(
        [promtool, "check", "rules", str(ROOT / "config/prometheus/edgeproxy-rules.yml")],
        capture_output=True,
        text=True,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run(
        [promtool, "check", "config", str(ROOT / "config/prometheus/prometheus.yml")], capture_output=True, text=True
    )
    assert config.returncode == 0, config.stdout + config.stderr


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the shipped Grafana dashboard."""
    dashboard = json.loads((ROOT / "config" / "grafana" / "edgeproxy.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_dashboard_query_filters_by_the_job_variable():
    """Each metric selector of every panel carries ``job=~"$job"`` (one panel of eight did)."""
    selectors = re.compile(r"\b((?:edgeproxy|process)_[a-z_]+)(\{[^}]*\})?")
    queries = dashboard_queries()
    assert len({panel for panel, _ in queries}) == 13
    unfiltered = [
        (panel, m.group(0))
        for panel, expr in queries
        for m in selectors.finditer(expr)
        if 'job=~"$job"' not in (m.group(2) or "")
    ]
    assert unfiltered == []


def test_real_prometheus_scrapes_the_values(photos: Path, tmp_path: Path):
    prometheus = need("prometheus")
    metrics_port = free_port()
    with make_client({"demo": str(photos)}, metrics_bind=f"127.0.0.1:{metrics_port}") as client:
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
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
            avif, up = [], []
            while time.monotonic() < deadline:
                avif = query('edgeproxy_requests_total{format="avif",status_class="2xx"}')
                up = query('up{job=~"edgeproxy.*"}')
                if avif and len(up) == 2:  # both targets scraped at least once
                    break
                time.sleep(0.5)
            # With metrics_bind, only that bind serves /metrics: the public port answers 404.
            assert [r["metric"]["job"] for r in avif] == ["edgeproxy-bind"]
            assert float(avif[0]["value"][1]) == 4
            assert {r["metric"]["job"]: float(r["value"][1]) for r in up} == {"edgeproxy-bind": 1, "edgeproxy-main": 0}
            signature = query('edgeproxy_errors_total{category="signature"}')
            assert float(signature[0]["value"][1]) == 1
            # Every query of the shipped Grafana dashboard is valid PromQL and follows its $job
            # variable: a job that scraped nothing leaves every panel empty.
            for panel, expr in dashboard_queries():
                for job, expect_data in (("edgeproxy-bind", panel in ("Saturation", "Memory")), ("nope", False)):
                    concrete = expr.replace("$job", job).replace("$__rate_interval", "1m")
                    body = httpx.get(api, params={"query": concrete}, timeout=5).json()
                    assert body["status"] == "success", (panel, concrete, body)
                    if expect_data:
                        assert body["data"]["result"], (panel, concrete)
                    elif job == "nope":
                        assert body["data"]["result"] == [], (panel, concrete)
        finally:
            proc.terminate()
            proc.wait(10)


def test_request_id_is_echoed_and_access_log_is_structured(photos: Path, caplog):
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    with make_client({"demo": str(photos)}) as client:
        ok = client.get(signed(f"/w:64/f:png/demo/{PHOTO}"), headers={"X-Request-ID": "abc-123"})
        bad = client.get("/AAAA/w:64/demo/" + PHOTO, headers={"X-Request-ID": "bad id with spaces"})
    assert ok.headers["x-request-id"] == "abc-123"
    assert len(bad.headers["x-request-id"]) == 32  # replaced by a fresh UUID
    records = {r.fields["request_id"]: r.fields for r in caplog.records if hasattr(r, "fields")}
    line = records["abc-123"]
    assert (line["status"], line["format"], line["origin"], line["cache"], line["error"]) == (
        200,
        "png",
        "demo",
        "miss",
        None,
    )
    assert line["bytes_out"] == len(ok.content) and line["bytes_in"] == (photos / PHOTO).stat().st_size
    assert set(line["stages_ms"]) == {"fetch", "queue", "decode", "transform", "encode"}
    assert records[bad.headers["x-request-id"]]["error"] == "signature"


def test_access_log_says_what_was_asked_for_and_carries_cdn_request_ids(photos: Path, caplog):
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    path = f"/w:64/demo/{PHOTO}"
    with make_client({"demo": str(photos)}, access_log_headers=["X-Varnish", "CF-Ray", "X-Edge-Id"]) as client:
        ok = client.get(
            signed(path),
            headers={
                "Accept": "image/webp,*/*",
                "X-Varnish": "32770",
                "CF-Ray": "8f1e2d3c4b5a6978-CDG",
                "X-Edge-Id": "id\twith tab",
                "X-Amz-Cf-Id": "not configured here",
            },
        )
        explicit = client.get(signed(f"/w:65/f:png/demo/{PHOTO}"), headers={"Accept": "image/avif,image/webp"})
        refused = client.get(signed(path) + "?cb=1", headers={"X-Varnish": "32771"})
    lines = {r.fields["request_id"]: r.fields for r in caplog.records if hasattr(r, "fields")}
    line = lines[ok.headers["x-request-id"]]
    assert (line["path"], line["format"], line["accept"], line["status"]) == (path, "webp", "webp", 200)
    assert line["cdn"] == {"x-varnish": "32770", "cf-ray": "8f1e2d3c4b5a6978-CDG", "x-edge-id": "id?with tab"}
    # The client's Accept bucket is logged even when the URL fixes the format.
    other = lines[explicit.headers["x-request-id"]]
    assert (other["format"], other["accept"]) == ("png", "avif+webp")
    # A refused request is traced too: no path after the signature was accepted, but the CDN id is there.
    assert refused.status_code == 400
    assert lines[refused.headers["x-request-id"]]["cdn"] == {"x-varnish": "32771"}
    assert lines[refused.headers["x-request-id"]]["error"] == "parse"


def test_head_sends_no_body_and_counts_no_bytes(photos: Path, caplog):
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    url = signed(f"/w:300/f:webp/demo/{PHOTO}")
    with make_client({"demo": str(photos)}) as client:
        heads = [client.head(url) for _ in range(3)]
        after_heads = value(client.get("/metrics").text, "edgeproxy_bytes_out_total")
        got = client.get(url)
        after_get = value(client.get("/metrics").text, "edgeproxy_bytes_out_total")
    assert all(h.status_code == 200 and h.content == b"" for h in heads)
    assert {h.headers["content-length"] for h in heads} == {str(len(got.content))}  # HEAD answers like GET
    assert after_heads == 0
    assert after_get == len(got.content)
    logged = [r.fields for r in caplog.records if hasattr(r, "fields")]
    assert [(f["method"], f["bytes_out"]) for f in logged] == [("HEAD", 0)] * 3 + [("GET", len(got.content))]


def test_metrics_bind_takes_metrics_off_the_public_port(photos: Path):
    metrics_port = free_port()
    with make_client({"demo": str(photos)}, metrics_bind=f"127.0.0.1:{metrics_port}") as client:
        assert client.get(signed(f"/w:64/f:png/demo/{PHOTO}")).status_code == 200
        public = client.get("/metrics")
        private = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
    assert public.status_code == 404
    assert public.headers["cache-control"] == "public, max-age=60"
    assert "edgeproxy_" not in public.text
    assert private.status_code == 200
    assert value(private.text, "edgeproxy_requests_total", status_class="2xx", format="png") == 1


def test_json_formatter_writes_one_object_per_line():
    from edgeproxy.http.logs import JsonFormatter

    record = logging.LogRecord("edgeproxy.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"status": 200, "request_id": "x"}
    data = json.loads(JsonFormatter().format(record))
    assert data["status"] == 200 and data["message"] == "request" and data["time"].endswith("Z")


@pytest.mark.extras
def test_readyz_checks_encoders(photo_client):
    body = photo_client.get("/readyz").json()
    jxl = {"jxl": True} if EXTRAS["jxl"] else {}  # JPEG XL output only with the [jxl] extra
    assert body["encoders"] == {"avif": True, "webp": True, "jpeg": True, "png": True, "gif": True, **jxl}
