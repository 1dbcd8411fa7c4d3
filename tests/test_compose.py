"""Docker cannot run here: check the production wiring by reading the compose file and Dockerfile."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_are_kafka_clickhouse_init_and_a_scalable_worker():
    assert {"kafka", "clickhouse", "init", "worker"} <= set(SERVICES)
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N needs both absent
    assert worker["command"] == ["worker"] and SERVICES["init"]["command"] == ["init"]


def test_kafka_is_a_single_kraft_node():
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_workers_and_init_reach_kafka_and_clickhouse_by_service_name():
    for name in ("init", "worker"):
        env = SERVICES[name]["environment"]
        host, port = env["TALLY_KAFKA"].split(":")
        assert host == "kafka" and port in SERVICES["kafka"]["environment"]["KAFKA_LISTENERS"]
        dsn = urlparse(env["TALLY_CLICKHOUSE"])
        assert dsn.hostname == "clickhouse" and dsn.port == 8123 and dsn.path == "/tally"
        assert dsn.username == "tally_writer"


def test_start_order_init_after_healthy_servers_workers_after_init():
    assert SERVICES["init"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "clickhouse": {"condition": "service_healthy"},
    }
    assert SERVICES["worker"]["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
    assert SERVICES["init"]["image"] == SERVICES["worker"]["image"] and SERVICES["init"]["build"] == "."


def test_clickhouse_has_a_writer_and_a_read_only_dashboard_user():
    mount = next(v for v in SERVICES["clickhouse"]["volumes"] if "users.d" in v)
    users = (REPO / mount.split(":")[0]).read_text()
    assert "<tally_writer>" in users and "<dashboard>" in users and "<readonly>1</readonly>" in users


def test_dockerfile_installs_the_project_and_its_schemas():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY schemas" in dockerfile and "pip install" in dockerfile and 'ENTRYPOINT ["tally"]' in dockerfile


def test_grafana_reads_clickhouse_as_the_read_only_user_with_the_dashboard_provisioned():
    grafana = SERVICES["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text())["datasources"][0]
    assert datasource["jsonData"]["host"] == "clickhouse" and datasource["jsonData"]["username"] == "dashboard"
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/tally.yaml").read_text())["providers"][0]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert (REPO / mounted[provider["options"]["path"]] / "tally.json").exists()
    api_dsn = urlparse(SERVICES["api"]["environment"]["TALLY_CLICKHOUSE"])
    assert api_dsn.username == "dashboard" and api_dsn.hostname == "clickhouse"  # the API reads only
