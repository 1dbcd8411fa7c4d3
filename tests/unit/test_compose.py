"""Docker cannot run here: check the production wiring by reading the compose file and
Dockerfile."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import yaml

from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def url(text: str):
    """A DSN of the compose file as compose would pass it, its ${VAR:?message} secrets set."""
    return urlparse(re.sub(r"\$\{[^}]*\}", "secret", text))


def test_services_are_kafka_clickhouse_init_and_a_scalable_worker():
    assert {"kafka", "clickhouse", "init", "worker"} <= set(SERVICES)
    worker = SERVICES["worker"]
    # --scale worker=N needs both absent
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][0] == "worker" and SERVICES["init"]["command"] == ["init"]


def test_kafka_is_a_single_kraft_node():
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "kafka:9094" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_workers_and_init_reach_kafka_and_clickhouse_by_service_name():
    for name in ("init", "worker"):
        env = SERVICES[name]["environment"]
        host, port = env["TALLY_KAFKA"].split(":")
        assert host == "kafka" and port in SERVICES["kafka"]["environment"]["KAFKA_LISTENERS"]
        dsn = url(env["TALLY_CLICKHOUSE"])
        assert dsn.hostname == "clickhouse" and dsn.port == 8123 and dsn.path == "/tally"
        assert dsn.username == "tally_writer"


def test_start_order_init_after_healthy_servers_workers_after_init():
    assert SERVICES["init"]["depends_on"] == {
        # users, topics and ACLs first
        "kafka-setup": {"condition": "service_completed_successfully"},
        "clickhouse": {"condition": "service_healthy"},
    }
    assert SERVICES["kafka-setup"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert SERVICES["worker"]["depends_on"] == {
        "init": {"condition": "service_completed_successfully"}
    }
    assert (
        SERVICES["init"]["image"] == SERVICES["worker"]["image"]
        and SERVICES["init"]["build"] == "."
    )


def test_clickhouse_has_a_writer_and_a_read_only_dashboard_user():
    mount = next(v for v in SERVICES["clickhouse"]["volumes"] if "users.d" in v)
    users = (REPO / mount.split(":")[0]).read_text()
    assert (
        "<tally_writer>" in users and "<dashboard>" in users and "<readonly>1</readonly>" in users
    )


def test_dockerfile_installs_the_project_and_its_schemas():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert (
        "COPY schemas" in dockerfile
        and "pip install" in dockerfile
        and 'ENTRYPOINT ["tally"]' in dockerfile
    )


def test_grafana_reads_clickhouse_as_the_read_only_user_with_the_dashboard_provisioned():
    grafana = SERVICES["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    datasource = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text()
    )["datasources"][0]
    assert (
        datasource["jsonData"]["host"] == "clickhouse"
        and datasource["jsonData"]["username"] == "dashboard"
    )
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/tally.yaml").read_text()
    )["providers"][0]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert (REPO / mounted[provider["options"]["path"]] / "tally.json").exists()
    api_dsn = url(SERVICES["api"]["environment"]["TALLY_CLICKHOUSE"])
    # the API reads only
    assert api_dsn.username == "dashboard" and api_dsn.hostname == "clickhouse"


KAFKA = SERVICES["kafka"]["environment"]


def test_kafka_clients_must_authenticate_over_tls_and_acls_deny_by_default():
    listeners = dict(entry.split("://") for entry in KAFKA["KAFKA_LISTENERS"].split(","))
    protocols = dict(
        entry.split(":") for entry in KAFKA["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    reachable = [
        name for name, address in listeners.items() if not address.startswith("127.0.0.1:")
    ]
    # nothing else leaves the container
    assert reachable == ["CLIENTS"] and protocols["CLIENTS"] == "SASL_SSL"
    assert KAFKA["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert "StandardAuthorizer" in KAFKA["KAFKA_AUTHORIZER_CLASS_NAME"]
    assert KAFKA["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    # the only way to the loopback ADMIN listener
    assert SERVICES["kafka-setup"]["network_mode"] == "service:kafka"


def test_workers_use_scram_over_tls_and_the_api_has_no_kafka_access():
    from streams.kafka.auth import kafka_options
    from streams.settings import Settings

    for name in ("init", "worker"):
        env = SERVICES[name]["environment"]
        settings = Settings.from_env(
            {k: str(v) for k, v in env.items() if k != "TALLY_KAFKA_CA_FILE"}
        )
        options = kafka_options(settings)
        assert (
            options["security_protocol"] == "SASL_SSL"
            and options["sasl_mechanism"] == "SCRAM-SHA-512"
        )
        assert options["sasl_plain_username"] == "worker"
        assert any(
            v.endswith(":" + env["TALLY_KAFKA_CA_FILE"] + ":ro") for v in SERVICES[name]["volumes"]
        )
        assert env["TALLY_REQUIRE_SIGNATURES"] == "1"
    assert not any(k.startswith("TALLY_KAFKA") for k in SERVICES["api"]["environment"])


def acls() -> list[tuple[str, set[str], str]]:
    """(principal, operations, resource) of every `acl` line of deploy/kafka/setup.sh."""
    found = []
    for line in (REPO / "deploy/kafka/setup.sh").read_text().splitlines():
        if line.startswith("acl --"):
            words = line.split()
            principal = words[words.index("--allow-principal") + 1]
            operations = {words[i + 1] for i, w in enumerate(words) if w == "--operation"}
            resource = (
                " ".join(
                    words[i] + " " + words[i + 1]
                    for i, w in enumerate(words)
                    if w in ("--topic", "--group")
                )
                or "cluster"
            )
            found.append((principal, operations, resource))
    return found


def test_gateways_may_only_write_submissions():
    gateway = [
        (ops, resource) for principal, ops, resource in acls() if principal == "User:gateway"
    ]
    assert gateway == [
        ({"Write", "Describe"}, "--topic tally.submissions"),
        ({"IdempotentWrite"}, "cluster"),
    ]
    principals = {principal for principal, _, _ in acls()}
    # no dashboard principal: dashboards read ClickHouse
    assert principals == {
        "User:gateway",
        "User:worker",
    }


def test_one_logger_appends_the_log_with_the_operator_key_read_only():
    logger = SERVICES["logger"]
    assert logger["command"] == ["logger"] and "deploy" not in logger  # one appender: never scaled
    env = logger["environment"]
    assert (
        env["TALLY_OPERATOR_KEY"] == "/keys/operator.key"
        and "./deploy/keys:/keys:ro" in logger["volumes"]
    )
    assert "TALLY_KAFKA" not in env  # it reads ClickHouse's change rows only
    assert url(env["TALLY_CLICKHOUSE"]).username == "tally_writer"
    assert logger["depends_on"] == {"init": {"condition": "service_completed_successfully"}}


def test_prometheus_scrapes_every_worker_and_the_api():
    """Workers serve metrics on the port Prometheus finds them at, by service name."""
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker = SERVICES["worker"]
    port = int(worker["command"][worker["command"].index("--metrics-port") + 1])
    assert jobs["worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": port, "refresh_interval": "15s"}
    ]
    # reached inside the network, never published
    assert str(port) in worker["expose"] and "ports" not in worker
    assert jobs["api"]["static_configs"][0]["targets"] == ["api:8080"]
    assert "prometheus" in SERVICES and "prometheus" in SERVICES["grafana"]["depends_on"]
    datasource = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_server_ends_a_stalled_insert_body_as_the_workers_assume():
    """The takeover wait counts on the server's http_receive_timeout: the users file sets the value
    the workers are told (TALLY_RECEIVE_TIMEOUT_S, default 10)."""
    mount = next(v for v in SERVICES["clickhouse"]["volumes"] if "users.d" in v)
    users = ET.fromstring((REPO / mount.split(":")[0]).read_text())
    timeout = users.find("./profiles/default/http_receive_timeout")
    worker_env = SERVICES["worker"].get("environment", {})
    told = float(worker_env.get("TALLY_RECEIVE_TIMEOUT_S", Settings().receive_timeout_s))
    assert timeout is not None and float(timeout.text) == told


def test_no_secret_has_a_fallback_a_missing_one_stops_compose_up_with_a_message():
    """`${VAR:-default}` would start production with a password anyone can read here;
    `${VAR:?message}` makes `docker compose up` stop and print the message instead."""
    text = (REPO / "docker-compose.yml").read_text()
    secrets = set(re.findall(r"\$\{(\w*PASSWORD\w*)", text))
    assert secrets == {
        "TALLY_KAFKA_WORKER_PASSWORD", "TALLY_KAFKA_GATEWAY_PASSWORD", "TALLY_WRITER_PASSWORD",
        "TALLY_DASHBOARD_PASSWORD", "TALLY_GRAFANA_ADMIN_PASSWORD",
    }  # fmt: skip
    for use in re.findall(r"\$\{(\w*PASSWORD\w*)([^}]*)\}", text):
        assert use[1].startswith(":?set "), use
    assert "change-me" not in text and ":-dashboard" not in text


def test_clickhouse_is_reached_on_the_compose_network_only():
    # published only by an operator's override, on loopback
    assert "ports" not in SERVICES["clickhouse"]


def test_grafana_requires_an_admin_password_and_lets_no_one_in_anonymously():
    env = SERVICES["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${TALLY_GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false" and env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_the_read_only_user_is_bounded_by_a_quota_and_per_query_limits():
    mount = next(v for v in SERVICES["clickhouse"]["volumes"] if "users.d" in v)
    config = ET.parse(REPO / mount.split(":")[0]).getroot()
    dashboard = config.find("users/dashboard")
    quota = config.find(f"quotas/{dashboard.findtext('quota')}")
    assert quota is not None and quota.find("keyed_by_ip") is not None
    limits = {child.tag: int(child.text) for child in quota.find("interval")}
    assert limits["duration"] == 60 and all(
        limits[k] > 0 for k in ("queries", "errors", "read_rows", "execution_time")
    )
    profile = config.find(f"profiles/{dashboard.findtext('profile')}")
    assert profile.findtext("readonly") == "1"
    assert (
        0 < int(profile.findtext("max_execution_time")) <= 60
        and int(profile.findtext("max_concurrent_queries_for_user")) > 0
    )
