"""The local stack's files: docker-compose.yml, Dockerfile, .dockerignore, .env.example.

No Docker engine runs here, so the compose file is checked two ways: structurally with PyYAML
(always), and by `docker compose config` where a compose v2 client is installed (it needs no engine).
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app as cli
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = {f"PLUMB_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def profiles(service: dict[str, Any]) -> set[str]:
    return set(service.get("profiles", []))


def split_mount(mount: str) -> tuple[str, str]:
    """(source, target) of a short-syntax volume; the source may be a ${VAR:-default} with a colon."""
    source, target = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::ro|:rw)?", mount).groups()
    return source, target


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in service.get("environment", {}).items()}


def test_the_stack_has_its_services_and_profiles(services):
    assert {name: profiles(s) for name, s in services.items()} == {
        "dynamodb": set(),
        "opensearch": set(),
        "dashboards": {"dashboards"},
        "init": set(),
        "app": set(),
        "vllm": {"gpu"},
        "app-gpu": {"gpu"},
    }


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name != "init":
            check = service.get("healthcheck", {})
            assert check.get("test"), f"{name} has no healthcheck"
            assert not check.get("disable"), name


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency == "init" else "service_healthy"
            assert rule == {"condition": wanted}, f"{name} -> {dependency}"


def test_a_dependency_is_enabled_whenever_its_dependent_is(services):
    """Compose refuses a service that depends on one left out by the active profiles."""
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert profiles(services[dependency]) <= profiles(service), f"{name} -> {dependency}"


def test_apps_and_init_start_after_the_stores_and_the_init_job(services):
    for name in ("app", "app-gpu"):
        assert {"init", "dynamodb", "opensearch"} <= set(services[name]["depends_on"])
    assert set(services["init"]["depends_on"]) == {"dynamodb", "opensearch"}
    assert "vllm" in services["app-gpu"]["depends_on"]
    assert services["init"]["restart"] == "no"


def test_named_volumes_are_declared_and_stateful_services_keep_their_data(compose, services):
    declared = set(compose["volumes"])
    used = set()
    for service in services.values():
        for mount in service.get("volumes", []):
            source, _ = split_mount(mount)
            if not source.startswith(("${", ".", "/")):
                used.add(source)
    assert used == declared

    def mounts(name: str) -> dict[str, str]:
        return {target: source for source, target in map(split_mount, services[name].get("volumes", []))}

    assert mounts("dynamodb")["/home/dynamodblocal/data"] == "dynamodb-data"
    assert mounts("opensearch")["/usr/share/opensearch/data"] == "opensearch-data"
    assert mounts("app")["/data"] == "app-data"
    assert mounts("vllm")["/adapters"] == "${ADAPTERS_DIR:-./adapters}"


def test_dynamodb_local_shares_one_database_on_its_volume(services):
    command = services["dynamodb"]["command"]
    assert services["dynamodb"]["image"].startswith("amazon/dynamodb-local:")
    assert "-sharedDb" in command
    assert command[command.index("-dbPath") + 1] == "/home/dynamodblocal/data"


def test_opensearch_is_a_single_node_without_security_and_with_a_bounded_heap(services):
    env = environment(services["opensearch"])
    assert env["discovery.type"] == "single-node"
    assert env["DISABLE_SECURITY_PLUGIN"] == "true"
    assert re.fullmatch(r"-Xms(\d+[mg]) -Xmx\1", env["OPENSEARCH_JAVA_OPTS"])
    assert environment(services["dashboards"])["OPENSEARCH_HOSTS"] == '["http://opensearch:9200"]'


def test_the_apps_use_opensearch_dynamodb_local_and_their_model(services):
    app, gpu = environment(services["app"]), environment(services["app-gpu"])
    for env in (app, gpu):
        assert env["PLUMB_INDEX_BACKEND"] == "opensearch"
        assert env["PLUMB_OPENSEARCH_URL"] == "http://opensearch:9200"
        assert env["PLUMB_DYNAMODB_ENDPOINT"] == "http://dynamodb:8000"
        assert env["PLUMB_DATA_DIR"] == "/data"
    assert app["PLUMB_LLM_BACKEND"] == "local"
    assert gpu["PLUMB_LLM_BACKEND"] == "openai"
    assert gpu["PLUMB_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert gpu["PLUMB_LLM_MODEL"] == services["vllm"]["command"][0]


def test_every_plumb_variable_in_the_compose_file_is_a_setting(services):
    for name, service in services.items():
        unknown = {key for key in environment(service) if key.startswith("PLUMB_")} - SETTING_NAMES
        assert not unknown, f"{name} sets {unknown}"


def test_vllm_serves_mistral_with_lora_adapters_on_a_gpu(services):
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert vllm["command"][0] == "mistralai/Mistral-7B-Instruct-v0.3"
    assert "--enable-lora" in vllm["command"]
    env = environment(vllm)
    assert env["VLLM_PLUGINS"] == "lora_filesystem_resolver"
    assert env["VLLM_LORA_RESOLVER_CACHE_DIR"] == "/adapters"
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_init_prepares_tables_index_and_samples_in_order(services):
    command = services["init"]["command"][-1]
    steps = [step.strip() for step in command.split("&&")]
    assert steps == ["plumb db init", "plumb index init", "plumb samples /data/samples", "plumb ingest /data/samples"]


@pytest.mark.parametrize("command", [["db", "init"], ["index", "init"], ["samples"], ["ingest"]])
def test_the_init_job_runs_commands_the_cli_has(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_ports_are_only_published_on_loopback(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_the_image_is_python_311_slim_serving_streamlit_on_8501():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"^EXPOSE 8501$", dockerfile, re.M)
    assert re.search(r"^USER plumb$", dockerfile, re.M)
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)
    assert '"streamlit", "run", "app/main.py"' in cmd and "--server.port=8501" in cmd
    assert (ROOT / "app" / "main.py").exists()


def test_the_build_context_leaves_out_secrets_and_local_state():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*", "the build context is an allowlist"
    assert {line for line in lines if line.startswith("!")} == {"!pyproject.toml", "!README.md", "!app/", "!pipeline/"}


def test_env_example_lists_every_setting_and_nothing_else():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?(PLUMB_[A-Z_]+)=", text, re.M))
    assert listed == SETTING_NAMES


def test_env_example_shows_the_defaults():
    text = (ROOT / ".env.example").read_text()
    shown = dict(re.findall(r"^#? ?PLUMB_([A-Z_]+)=(.*)$", text, re.M))
    defaults = Settings.model_construct()
    for name, value in shown.items():
        default = getattr(defaults, name.lower())
        expected = str(default).lower() if isinstance(default, bool) else str(default)
        assert value == ("[]" if default == [] else expected), name


def compose_v2() -> list[str] | None:
    """The Compose v2 command here: the docker CLI plugin, or a standalone v2 `docker-compose`."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version", "--short"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip().lstrip("v").startswith("2."):
            return command
    return None


@pytest.mark.skipif(compose_v2() is None, reason="no Docker Compose v2 client here")
def test_docker_compose_accepts_the_file_with_every_profile():
    result = subprocess.run(
        [
            *compose_v2(),
            "--project-directory",
            str(ROOT),
            "--profile",
            "gpu",
            "--profile",
            "dashboards",
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
