"""config/k8s: the Kubernetes manifests.

Every manifest validates against the Kubernetes OpenAPI schemas for each Kubernetes version from 1.30
to the newest that kubernetes-validate bundles (its JSON schemas ship in the wheel; strict: an unknown
field is an error; the network is cut while it runs). Then what an operator relies on is checked from
the YAML: the probes, the settings the environment gives (built with ``load_settings`` as ``edgeproxy
serve`` would), graceful shutdown, the Secret, selectors, the HPA and PDB, resources against
``bench/results.md``, and the security context against the Dockerfile's user.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from edgeproxy import __version__
from edgeproxy.cli import _parser
from edgeproxy.settings import Settings, load_settings
from testkit.env import ROOT

K8S = ROOT / "config" / "k8s"
SECRET_NAME = "edgeproxy-keys"
#: Oldest Kubernetes minor the manifests must be valid for; every bundled one from it on is checked.
OLDEST_K8S = "1.30"
K8S_VERSIONS = [v for v in (".".join(v.split(".")[:2]) for v in all_versions()) if Version(v) >= Version(OLDEST_K8S)]
#: /readyz checks the origins one after another, each with this limit (edgeproxy/origins/http.py, s3.py).
READY_ORIGIN_LIMIT_S = 2.0
#: Bytes per pixel of a decoded 8-bit RGBA image: the memory limit's arithmetic.
BYTES_PER_PIXEL = 4


# --- reading the manifests --------------------------------------------------------------------------


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@functools.cache
def _resources() -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in found, f"{key} defined twice"
                found[key] = doc
    return found


def resources() -> dict[tuple[str, str], dict]:
    return copy.deepcopy(_resources())


def one(kind: str) -> dict:
    matches = [doc for (k, _), doc in resources().items() if k == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def deployment() -> dict:
    return one("Deployment")


def pod_spec() -> dict:
    return deployment()["spec"]["template"]["spec"]


def pod_labels() -> dict:
    return deployment()["spec"]["template"]["metadata"]["labels"]


def container() -> dict:
    containers = pod_spec()["containers"]
    assert [c["name"] for c in containers] == ["edgeproxy"], "one container, named edgeproxy"
    return containers[0]


def container_port(ref: int | str) -> int:
    """A probe's or a Service's port (a name or a number) as the container port it reaches."""
    ports = container()["ports"]
    if isinstance(ref, int):
        assert ref in [p["containerPort"] for p in ports], f"port {ref} is not a container port"
        return ref
    named = [p["containerPort"] for p in ports if p.get("name") == ref]
    assert named, f"no container port named {ref!r}"
    return named[0]


def secret() -> dict:
    return resources()[("Secret", SECRET_NAME)]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity ("2", "500m", "512Mi", "1G") as a number of cores or bytes."""
    units = {
        "m": 1e-3,
        "": 1,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", str(value))
    assert match and match.group(2) in units, f"unreadable quantity {value!r}"
    return float(match.group(1)) * units[match.group(2)]


def cpu_request() -> float:
    return quantity(container()["resources"]["requests"]["cpu"])


def placeholder_free(key: str, value: str) -> str:
    """The Secret's value, or a test value in place of a CHANGE-ME placeholder."""
    return f"test-{key}-value" if "CHANGE-ME" in value else value


def resolved_env(secret_values: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet would set it, Secret values from ``secret_values``."""
    env: dict[str, str] = {}
    for entry in container()["env"]:
        name = entry["name"]
        assert name not in env, f"{name} set twice"
        source = entry.get("valueFrom", {})
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in source:
            env[name] = secret_values[source["secretKeyRef"]["key"]]
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            assert ref.get("containerName", "edgeproxy") == "edgeproxy"
            amount = quantity(
                container()["resources"]["requests" if ref["resource"].startswith("requests.") else "limits"][
                    ref["resource"].split(".", 1)[1]
                ]
            )
            env[name] = str(math.ceil(amount / quantity(ref.get("divisor", "1"))))  # the kubelet rounds up
        else:
            pytest.fail(f"env {name}: unsupported source {entry}")
    return env


def serve_argv() -> list[str]:
    """``edgeproxy serve``'s arguments: the container runs ``sh -c GUARD; exec edgeproxy serve "$@"``."""
    command, args = container()["command"], container().get("args", [])
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 4, command
    assert command[2].rstrip().endswith('exec edgeproxy serve "$@"'), command[2]
    return args


def build_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The settings a pod starts with: its environment (Secret placeholders replaced, local-folder
    origins pointed at ``tmp_path``) and its command line, loaded as ``edgeproxy serve`` loads them."""
    values = {key: placeholder_free(key, value) for key, value in secret()["stringData"].items()}
    for name in [name for name in os.environ if name.startswith("EDGEPROXY_")]:
        monkeypatch.delenv(name)
    env = resolved_env(values)
    if "EDGEPROXY_ORIGINS" in env:
        origins = json.loads(env["EDGEPROXY_ORIGINS"])
        for name, location in origins.items():
            if not location.startswith(("http://", "https://", "s3://")):
                (tmp_path / name).mkdir()
                origins[name] = str(tmp_path / name)
        env["EDGEPROXY_ORIGINS"] = json.dumps(origins)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = _parser().parse_args(["serve", *serve_argv()])  # an unknown option exits here
    overrides = {k: v for k, v in vars(args).items() if k in Settings.model_fields}
    if args.origin:
        overrides["origins"] = dict(args.origin)
    return load_settings(args.config, **overrides)


def prestop_seconds() -> float:
    hook = container()["lifecycle"]["preStop"]
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    if command[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep"):
        return float(command[1])
    match = re.search(r"time\.sleep\((\d+(?:\.\d+)?)\)", " ".join(command))
    assert match, f"preStop does not sleep: {command}"
    return float(match.group(1))


def dockerfile_user() -> tuple[int, int | None]:
    """(uid, gid or None) of the Dockerfile's last USER, by number or through its useradd line."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    users = re.findall(r"^\s*USER\s+(\S+)", text, re.MULTILINE | re.IGNORECASE)
    assert users, "the Dockerfile sets no USER"
    user, _, group = users[-1].partition(":")
    uid = int(user) if user.isdigit() else None
    gid = int(group) if group.isdigit() else None
    for command in re.split(r"&&|;|\|\||\n", text):
        words = command.split()
        if {"useradd", "adduser"} & set(words) and words[-1] == user:
            match = re.search(r"(?:--uid[= ]+|(?<![-\w])-u\s*)(\d+)", command)
            uid = int(match.group(1)) if match else uid
    assert uid is not None, f"no UID for the Dockerfile's USER {user!r}"
    return uid, gid


def bench_peak_rss_mb() -> float:
    """The largest 'peak RSS MB' in bench/results.md's tables."""
    peaks = []
    column = None
    for line in (ROOT / "bench" / "results.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            column = None
        elif "peak RSS MB" in cells:
            column = cells.index("peak RSS MB")
        elif column is not None and re.fullmatch(r"\d+(\.\d+)?", cells[column]):
            peaks.append(float(cells[column]))
    assert peaks, "no 'peak RSS MB' column in bench/results.md"
    return max(peaks)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access during schema validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --- schemas ----------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    kust = kustomization()
    assert (kust["apiVersion"], kust["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kust["resources"]) == sorted(files), "kustomization.yaml must list every manifest, once"
    image_name = container()["image"].rsplit(":", 1)[0]
    assert [(i["name"], i.get("newTag")) for i in kust.get("images", [])] in ([], [(image_name, __version__)])


def test_schema_versions_cover_recent_kubernetes():
    assert K8S_VERSIONS[0] == OLDEST_K8S and Version(K8S_VERSIONS[-1]) >= Version("1.33"), K8S_VERSIONS


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(version, no_network):
    for (kind, name), doc in resources().items():
        # Core kinds only: a kind without a schema (SchemaNotFoundError) fails too.
        assert kubernetes_validate.validate(doc, version, strict=True) == version, (kind, name)


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "replica"), 2),  # unknown field (strict)
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "http"),
        (("spec", "template", "spec", "containers", 0, "readinessProbe", "timeoutSeconds"), "5"),
        (("spec", "template", "spec", "containers", 0, "env", 0, "value"), 1),
        (("spec", "template", "spec", "containers", 0, "securityContext", "readOnlyRootFS"), True),
    ],
)
def test_schema_validation_rejects_mistakes(path, value, no_network):
    doc = deployment()
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


# --- what an operator relies on ---------------------------------------------------------------------


def test_env_names_are_settings_and_values_load(monkeypatch, tmp_path):
    for entry in container()["env"]:
        name = entry["name"]
        if name.startswith("EDGEPROXY_"):
            field = name.removeprefix("EDGEPROXY_").lower()
            assert field in Settings.model_fields, f"{name} is not a setting"
    settings = build_settings(monkeypatch, tmp_path)
    assert settings.workers == 1, "one process per pod: scale with replicas"
    assert settings.signing_key is not None and settings.admin_token is not None
    assert (settings.host, settings.port) == ("0.0.0.0", container_port("http"))


def test_probes(monkeypatch, tmp_path):
    probes = {
        name: container()[name] for name in ("readinessProbe", "livenessProbe", "startupProbe") if name in container()
    }
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"  # an origin outage must not restart pods
    for name, probe in probes.items():
        assert probe["httpGet"].get("scheme", "HTTP") == "HTTP", name
        assert container_port(probe["httpGet"]["port"]) == container_port("http"), name
        assert 1 <= probe.get("periodSeconds", 10) <= 30 and probe.get("failureThreshold", 3) >= 3, name
    if "startupProbe" in probes:
        assert probes["startupProbe"]["httpGet"]["path"] == "/healthz"
    settings = build_settings(monkeypatch, tmp_path)
    remote = [loc for loc in settings.origins.values() if loc.startswith(("http://", "https://", "s3://"))]
    assert probes["readinessProbe"].get("timeoutSeconds", 1) > READY_ORIGIN_LIMIT_S * max(1, len(remote))
    assert probes["livenessProbe"].get("timeoutSeconds", 1) >= 2


def test_readiness_stays_ready_when_every_origin_fails(monkeypatch, tmp_path):
    """Readiness is about the pod (issue 20, item 5): with the pod's own settings and every remote
    origin failing (the S3 endpoint refusing connections, the HTTP origin refused by the SSRF
    guard), the readiness probe's path answers 200 and reports the origins, so an origin outage
    never takes every pod out of the Service at once."""
    import httpx
    from pydantic import SecretStr

    from edgeproxy.http.app import create_app
    from testkit.app import serve_app
    from testkit.net import free_port

    settings = build_settings(monkeypatch, tmp_path)
    closed = f"http://127.0.0.1:{free_port()}"
    origins = {
        name: (closed + "/uploads" if location.startswith(("http://", "https://")) else location)
        for name, location in settings.origins.items()
    }
    assert any(location.startswith("s3://") for location in origins.values()), "the example has an S3 origin"
    settings = settings.model_copy(
        update={
            "origins": origins,
            "s3_endpoint_url": closed,
            "metrics_bind": None,
            "s3_access_key_id": "AKIATEST",
            "s3_secret_access_key": SecretStr("test-secret"),
        }
    )
    probe = container()["readinessProbe"]["httpGet"]["path"]
    with serve_app(create_app(settings)) as base:
        response = httpx.get(base + probe, timeout=probe_timeout())
    assert response.status_code == 200, response.text
    body = response.json()
    remote = [name for name, location in origins.items() if location.startswith(("http://", "s3://"))]
    assert body["status"] == "degraded" and all(body["origins"][name] is False for name in remote), body


def probe_timeout() -> float:
    return float(container()["readinessProbe"].get("timeoutSeconds", 1))


def test_metrics_port_is_separate(monkeypatch, tmp_path):
    settings = build_settings(monkeypatch, tmp_path)
    host, _, port = settings.metrics_bind.rpartition(":")
    assert host == "0.0.0.0" and int(port) == container_port("metrics") != container_port("http")
    for (kind, name), doc in resources().items():
        if kind == "Service":
            targets = {container_port(p["targetPort"]) for p in doc["spec"]["ports"]}
            metrics_only = targets == {container_port("metrics")}
            assert metrics_only or container_port("metrics") not in targets, f"{name} mixes /metrics with traffic"
    main = resources()[("Service", deployment()["metadata"]["name"])]
    assert {container_port(p["targetPort"]) for p in main["spec"]["ports"]} == {container_port("http")}


def test_graceful_shutdown(monkeypatch, tmp_path):
    settings = build_settings(monkeypatch, tmp_path)
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert grace > settings.request_timeout + prestop_seconds() > settings.request_timeout
    assert prestop_seconds() >= 3, "time for endpoints to be removed before SIGTERM"


def test_secret_matches_deployment():
    refs = [e["valueFrom"]["secretKeyRef"] for e in container()["env"] if "secretKeyRef" in e.get("valueFrom", {})]
    assert {r["name"] for r in refs} == {SECRET_NAME}
    data = secret()["stringData"]
    assert "data" not in secret()
    assert {r["key"] for r in refs} == set(data), "the Secret's keys are exactly those the Deployment reads"
    assert "CHANGE-ME" in data["signing-key"] and "CHANGE-ME" in data["admin-token"]
    assert isinstance(json.loads(data["previous-signing-keys"]), list)


def test_placeholder_guard_refuses_to_start():
    """The container's command exits 1 while a CHANGE-ME is left, and runs ``edgeproxy serve`` otherwise."""
    command = container()["command"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPROXY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
        for e in container()["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    data = secret()["stringData"]
    placeholders = {name: data[key] for name, key in secrets.items()}
    run = subprocess.run([*command, "--help"], env={**env, **placeholders}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "CHANGE-ME" in run.stderr, run
    real = {name: placeholder_free(key, data[key]) for name, key in secrets.items()}
    run = subprocess.run([*command, "--help"], env={**env, **real}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "usage: edgeproxy serve" in run.stdout, run


def test_selectors_match_pod_labels():
    selector = deployment()["spec"]["selector"]["matchLabels"]
    labels = pod_labels()
    assert selector.items() <= labels.items()
    for (kind, name), doc in resources().items():
        if kind == "Service":
            assert doc["spec"]["selector"] == selector, name
        if kind == "PodDisruptionBudget":
            assert doc["spec"]["selector"] == {"matchLabels": selector}, name
    for constraint in pod_spec().get("topologySpreadConstraints", []):
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    keys = {c["topologyKey"] for c in pod_spec().get("topologySpreadConstraints", [])}
    affinity = pod_spec().get("affinity", {}).get("podAntiAffinity")
    assert "kubernetes.io/hostname" in keys or affinity, "replicas spread across nodes"


def test_hpa_and_pdb_target_the_deployment():
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment()["metadata"]["name"],
    }
    assert "replicas" not in deployment()["spec"], "the HPA owns the replica count"
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    [metric] = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert 50 <= metric["resource"]["target"]["averageUtilization"] <= 80
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
    pdb = one("PodDisruptionBudget")["spec"]
    # At minReplicas, a drain can evict one pod and one keeps serving.
    if "maxUnavailable" in pdb:
        assert 1 <= pdb["maxUnavailable"] < hpa["minReplicas"]
    else:
        assert 1 <= pdb["minAvailable"] < hpa["minReplicas"]
    strategy = deployment()["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": "25%"}


def test_render_threads_equal_cpu_request(monkeypatch, tmp_path):
    assert cpu_request() >= 1 and cpu_request() == int(cpu_request()), "whole cores"
    assert "EDGEPROXY_RENDER_THREADS" in {e["name"] for e in container()["env"]}, (
        "unset, render_threads is os.cpu_count(): the node's cores"
    )
    assert build_settings(monkeypatch, tmp_path).render_threads == int(cpu_request())


def test_memory_from_the_benchmark(monkeypatch, tmp_path):
    settings = build_settings(monkeypatch, tmp_path)
    resources_ = container()["resources"]
    request, limit = quantity(resources_["requests"]["memory"]), quantity(resources_["limits"]["memory"])
    assert request >= bench_peak_rss_mb() * 1e6 + settings.original_cache_bytes
    assert limit >= request + settings.max_source_pixels * BYTES_PER_PIXEL * settings.render_threads


def test_security_context_matches_the_dockerfile():
    pod, ctr = pod_spec().get("securityContext", {}), container().get("securityContext", {})
    effective = {**pod, **ctr}
    uid, gid = dockerfile_user()
    assert effective["runAsNonRoot"] is True and effective["runAsUser"] == uid != 0
    if gid is not None:
        assert effective.get("runAsGroup") == gid
    assert effective["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["readOnlyRootFilesystem"] is True and ctr["allowPrivilegeEscalation"] is False
    assert ctr["capabilities"]["drop"] == ["ALL"] and not ctr["capabilities"].get("add")
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    [tmp] = [m for m in container()["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    assert pod_spec()["enableServiceLinks"] is False, "a Service named edgeproxy would set EDGEPROXY_PORT"
    assert pod_spec()["automountServiceAccountToken"] is False
    base = dockerfile_runtime_base()
    assert "distroless" not in base and base != "scratch", f"{base}: the preStop hook and the guard need sh and sleep"


def dockerfile_runtime_base() -> str:
    text = (ROOT / "Dockerfile").read_text()
    defaults = dict(re.findall(r"^\s*ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    image = re.findall(r"^\s*FROM\s+(\S+)", text, re.MULTILINE)[-1]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)


def test_labels_and_image_version():
    for (kind, name), doc in resources().items():
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "edgeproxy", (kind, name)
        assert labels.get("app.kubernetes.io/version", __version__) == __version__, (kind, name)
    assert pod_labels()["app.kubernetes.io/version"] == __version__
    assert container()["image"] == f"edgeproxy:{__version__}"


# --- the synthetic check's CronJob -------------------------------------------------------------------


def check_container() -> dict:
    pod = one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [ctr] = pod["containers"]
    return ctr


def test_check_cronjob_runs_edgeproxy_check_on_the_manifest(tmp_path):
    """The CronJob's arguments are what ``edgeproxy check`` accepts, its manifest (the ConfigMap) builds
    signed targets for every id in every variant and Accept string, and its key is the Secret's."""
    from edgeproxy import check

    cron = one("CronJob")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid" and cron["jobTemplate"]["spec"]["backoffLimit"] == 0
    period_s = int(cron["schedule"].split()[0].removeprefix("*/")) * 60
    assert cron["jobTemplate"]["spec"]["activeDeadlineSeconds"] < period_s
    ctr = check_container()
    args = _parser().parse_args([*ctr["command"][1:], *ctr["args"]])
    assert ctr["command"][0] == "edgeproxy" and args.command == "check"
    [mount] = ctr["volumeMounts"]
    configmap = one("ConfigMap")
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert [v["configMap"]["name"] for v in pod["volumes"]] == [configmap["metadata"]["name"]]
    manifest_file = Path(args.manifest)
    assert manifest_file.parent == Path(mount["mountPath"])
    manifest = json.loads(configmap["data"][manifest_file.name])
    targets = check.manifest_targets(manifest, args.variant, base_url=args.base_url, key="k", accepts=args.accept)
    assert len(targets) == len(manifest) * len(args.variant) * len(args.accept) == 18
    [key_ref] = [e["valueFrom"]["secretKeyRef"] for e in ctr["env"] if e["name"] == "EDGEPROXY_SIGNING_KEY"]
    assert key_ref == {"name": SECRET_NAME, "key": "signing-key"}
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_user()[0]


def test_check_pods_are_not_selected_by_the_proxy_service_or_pdb():
    labels = one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    for (kind, name), doc in resources().items():
        if kind in ("Service", "PodDisruptionBudget"):
            selector = doc["spec"]["selector"].get("matchLabels", doc["spec"]["selector"])
            assert not selector.items() <= labels.items(), f"{kind} {name} would select the check's pods"
