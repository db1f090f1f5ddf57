"""The Helm chart (deploy/helm/slipway): it lints, renders manifests that Kubernetes' own
schemas accept, and runs every process the way the platform needs (probes, resources,
non-root and read-only, settings and secrets, the gateway's autoscaler)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from slipway.core.settings import load_settings
from tests.deploy.helm import (
    DATABASE_URL,
    KUBERNETES_VERSION,
    Helm,
    by_kind,
    container,
)

COMPONENTS = {"control-plane", "tracking", "scheduler", "worker", "gateway"}
# The HTTP planes, their probe path (public with auth on) and Service.
PROBED = {
    "control-plane": "/api/v1/health/live",
    "tracking": "/health",
    "gateway": "/ping",
}


@pytest.fixture(scope="module")
def manifests(helm: Helm) -> list[dict[str, Any]]:
    return helm.manifests()


def test_helm_lint_passes(helm: Helm) -> None:
    run = helm.run("lint", str(Path(__file__).resolve().parents[2] / "deploy/helm/slipway"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in run.stdout


def test_every_manifest_validates_against_kubernetes_schemas(
    manifests: list[dict[str, Any]],
) -> None:
    kinds = sorted({doc["kind"] for doc in manifests})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "ServiceAccount",
    ]
    for doc in manifests:
        validated = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert validated == KUBERNETES_VERSION.rsplit(".", 1)[0]


def test_strict_validation_refuses_an_unknown_field(manifests: list[dict[str, Any]]) -> None:
    """The check above has teeth: a misspelt field (as a template typo would render) fails."""
    deployment = copy.deepcopy(by_kind(manifests, "Deployment")["gateway"])
    container(deployment)["readinesProbe"] = container(deployment)["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    assert "readinesProbe" in caught.value.message


def test_one_deployment_per_process_with_its_command(manifests: list[dict[str, Any]]) -> None:
    deployments = by_kind(manifests, "Deployment")
    assert set(deployments) == COMPONENTS
    args = {name: container(d)["args"] for name, d in deployments.items()}
    assert args["control-plane"] == ["server", "--host", "0.0.0.0", "--port", "8420"]
    assert args["tracking"] == ["mlflow", "--host", "0.0.0.0", "--port", "8421"]
    assert args["scheduler"] == ["scheduler"]
    assert args["worker"] == ["worker", "--id", "$(POD_NAME)"]
    assert args["gateway"] == [
        "serve", "--host", "0.0.0.0", "--port", "8422", "--workers", "2", "--max-workers", "2"
    ]  # fmt: skip
    for deployment in deployments.values():
        assert container(deployment)["image"] == "slipway:0.1.0"  # the chart's appVersion


def test_http_planes_have_probes_and_services(manifests: list[dict[str, Any]]) -> None:
    deployments = by_kind(manifests, "Deployment")
    services = by_kind(manifests, "Service")
    assert set(services) == set(PROBED)
    for name, path in PROBED.items():
        spec = container(deployments[name])
        (port,) = spec["ports"]
        assert port["name"] == "http"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert spec[probe]["httpGet"] == {"path": path, "port": "http"}, (name, probe)
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["targetPort"] == "http"
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        assert services[name]["spec"]["selector"] == selector
    # The first start migrates the database: the startup probe waits 5 minutes for it.
    startup = container(deployments["control-plane"])["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 300


def test_every_pod_is_non_root_read_only_without_capabilities_and_bounded(
    manifests: list[dict[str, Any]],
) -> None:
    for name, deployment in by_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        assert pod["automountServiceAccountToken"] is False
        spec = container(deployment)
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        # What Slipway writes goes to scratch volumes, since the root filesystem is read-only.
        mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
        assert mounts == {"/etc/slipway": "config", "/var/lib/slipway": "home", "/tmp": "tmp"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["home"]["emptyDir"]["sizeLimit"] == "4Gi"
        for kind in ("requests", "limits"):
            assert set(spec["resources"][kind]) == {"cpu", "memory"}, (name, kind)


def test_gateway_scales_with_a_horizontal_pod_autoscaler(
    manifests: list[dict[str, Any]],
) -> None:
    gateway = by_kind(manifests, "Deployment")["gateway"]
    assert "replicas" not in gateway["spec"]  # the autoscaler owns the count
    (hpa,) = by_kind(manifests, "HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": gateway["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    # CPU utilization is measured against the request, so the gateway must have one.
    assert container(gateway)["resources"]["requests"]["cpu"] == "1"
    (pdb,) = by_kind(manifests, "PodDisruptionBudget").values()
    assert pdb["spec"]["selector"] == gateway["spec"]["selector"]


def test_without_autoscaling_the_gateway_runs_a_fixed_count(helm: Helm) -> None:
    manifests = helm.manifests("gateway.autoscaling.enabled=false", "gateway.replicas=3")
    assert by_kind(manifests, "Deployment")["gateway"]["spec"]["replicas"] == 3
    assert by_kind(manifests, "HorizontalPodAutoscaler") == {}


def test_settings_come_from_the_config_map_and_secrets_from_the_secret(
    manifests: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_map,) = by_kind(manifests, "ConfigMap").values()
    (secret,) = by_kind(manifests, "Secret").values()
    assert secret["stringData"] == {"SLIPWAY_DATABASE__URL": DATABASE_URL}
    name = config_map["metadata"]["name"]
    for deployment in by_kind(manifests, "Deployment").values():
        spec = container(deployment)
        assert spec["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
        env = {e["name"]: e.get("value") for e in spec["env"]}
        assert env["SLIPWAY_CONFIG"] == "/etc/slipway/slipway.yaml"
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == name
        # A new ConfigMap or Secret rolls the pods.
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert {"checksum/config", "checksum/secret"} <= set(annotations)
    # slipway.yaml is read by Slipway's own settings: every key is one it knows.
    path = tmp_path / "slipway.yaml"
    path.write_text(config_map["data"]["slipway.yaml"])
    monkeypatch.setenv("SLIPWAY_CONFIG", str(path))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", secret["stringData"]["SLIPWAY_DATABASE__URL"])
    settings = load_settings()
    assert settings.database_url == DATABASE_URL
    assert settings.artifacts.root == "s3://slipway/artifacts"
    assert settings.online_store.url == "redis://redis:6379/0"
    assert (settings.server.port, settings.tracking.port, settings.serving.port) == (
        8420,
        8421,
        8422,
    )
    assert (settings.serving.workers, settings.serving.max_workers) == (2, 2)


def test_values_reach_the_settings_the_environment_and_the_secret(helm: Helm) -> None:
    manifests = helm.manifests(
        "config.kafka.bootstrap_servers=kafka-0:9092",
        "workers.queues={jobs,trials}",
        "workers.logToTrackingServer=true",
        set_string=(
            "env.AWS_ENDPOINT_URL=http://s3.storage:9000",
            "secret.env.AWS_SECRET_ACCESS_KEY=s3cr3t",
            "secret.env.MLFLOW_TRACKING_TOKEN=slw_x_y",
        ),
    )
    settings = yaml.safe_load(by_kind(manifests, "ConfigMap")["slipway"]["data"]["slipway.yaml"])
    assert settings["kafka"] == {"bootstrap_servers": "kafka-0:9092"}
    (secret,) = by_kind(manifests, "Secret").values()
    assert secret["stringData"] == {
        "SLIPWAY_DATABASE__URL": DATABASE_URL,
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "MLFLOW_TRACKING_TOKEN": "slw_x_y",
    }
    worker = container(by_kind(manifests, "Deployment")["worker"])
    queues = ["--queue", "jobs", "--queue", "trials"]
    assert worker["args"] == ["worker", "--id", "$(POD_NAME)", *queues]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["AWS_ENDPOINT_URL"] == "http://s3.storage:9000"
    assert env["MLFLOW_TRACKING_URI"] == "http://slipway-tracking:8421"
    control_plane = container(by_kind(manifests, "Deployment")["control-plane"])
    cp_env = {e["name"]: e.get("value") for e in control_plane["env"]}
    assert cp_env["MLFLOW_TRACKING_URI"] == "http://slipway-tracking:8421"


def test_an_existing_secret_replaces_the_charts(helm: Helm) -> None:
    run = helm.template("secret.existingSecret=platform-credentials", database=False)
    assert run.returncode == 0, run.stderr
    manifests = [doc for doc in yaml.safe_load_all(run.stdout) if doc]
    assert by_kind(manifests, "Secret") == {}
    for deployment in by_kind(manifests, "Deployment").values():
        refs = container(deployment)["envFrom"]
        assert refs == [{"secretRef": {"name": "platform-credentials"}}]


def test_the_tracking_server_can_be_left_out(helm: Helm) -> None:
    manifests = helm.manifests("tracking.enabled=false")
    assert "tracking" not in by_kind(manifests, "Deployment")
    assert "tracking" not in by_kind(manifests, "Service")
    control_plane = container(by_kind(manifests, "Deployment")["control-plane"])
    assert "MLFLOW_TRACKING_URI" not in {e["name"] for e in control_plane["env"]}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ((), "secret.databaseUrl"),
        (("config.artifacts.root=/var/lib/slipway/artifacts",), "config.artifacts.root"),
        (("gateway.processes=4", "gateway.maxProcesses=2"), "gateway.maxProcesses"),
        (
            ("gateway.autoscaling.minReplicas=5", "gateway.autoscaling.maxReplicas=3"),
            "gateway.autoscaling.maxReplicas",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_value(
    helm: Helm, values: tuple[str, ...], field: str
) -> None:
    run = helm.template(*values, database=bool(values))
    assert run.returncode != 0, run.stdout
    assert field in run.stderr, run.stderr
