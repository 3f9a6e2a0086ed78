"""The production reference (infra/production) cannot run here; these checks keep it consistent
with the code and the local stack the suite runs."""

from __future__ import annotations

import re
import subprocess
import tempfile
import tomllib

import yaml
import xml.etree.ElementTree as ET

from sinks.clickhouse import MIGRATIONS_DIR, _statements
from streams.config import INFRA_DIR, REPO_ROOT
from streams.topics import INPUT_TOPICS
from tests.unit.test_prometheus_rules import PROMTOOL

PRODUCTION = INFRA_DIR / "production"
COMPOSE = yaml.safe_load((PRODUCTION / "compose.yaml").read_text(encoding="utf-8"))


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "streams").rglob("*.py"):
        names |= set(re.findall(r'"(BINHYEN_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_every_worker_setting_in_compose_is_one_the_code_reads() -> None:
    worker_env = COMPOSE["services"]["worker"]["environment"]
    assert set(worker_env) <= settings_read_by_the_code()
    assert worker_env["BINHYEN_PRODUCER_MAX_BATCH_BYTES"] != "1"  # the local broker's workaround only
    assert worker_env["BINHYEN_METRICS_HOST"] == "0.0.0.0"


def test_several_workers_each_with_state_of_its_own() -> None:
    worker = COMPOSE["services"]["worker"]
    state = worker["environment"]["BINHYEN_STATE_DIR"]
    assert worker["deploy"]["replicas"] >= 2
    # a volume over the state would be shared by every replica's RocksDB store; config is mounted read-only
    assert all(volume.endswith(":ro") and not volume.split(":")[1].startswith(state) for volume in worker["volumes"])
    assert worker["tmpfs"][0].startswith(state + ":")


def test_kafka_never_auto_creates_topics() -> None:
    assert COMPOSE["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_mounted_rules_dashboards_and_provisioning_are_the_tested_ones() -> None:
    mounts = [volume.split(":")[0] for service in COMPOSE["services"].values() for volume in service.get("volumes", [])
              if volume.startswith(".")]
    for source in mounts:
        assert (PRODUCTION / source).exists(), source
    assert "../prometheus/rules" in mounts and "../grafana/dashboards" in mounts and "../grafana/provisioning" in mounts


def test_production_prometheus_scrapes_the_workers_and_the_gateways_metrics_ports() -> None:
    checked = subprocess.run([PROMTOOL, "check", "config", "prometheus/prometheus.yml"], cwd=PRODUCTION,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((PRODUCTION / "prometheus" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["job_name"] == "binhyen-worker"  # the job the on-call rules select
    assert str(job["dns_sd_configs"][0]["port"]) == COMPOSE["services"]["worker"]["environment"]["BINHYEN_METRICS_PORT"]
    gateway = COMPOSE["services"]["gateway"]["environment"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["binhyen-gateway"]["dns_sd_configs"] == [
        {"names": ["gateway"], "type": "A", "port": int(gateway["BINHYEN_GATEWAY_METRICS_PORT"])}]


def test_the_image_holds_every_package() -> None:
    included = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    dockerfile = (PRODUCTION / "Dockerfile").read_text()
    for package in (pattern.rstrip("*") for pattern in included["include"]):
        assert f"COPY {package} {package}" in dockerfile


def analytics_relations() -> set[str]:
    """Tables and views the migrations create in the analysts' database (not private, not internal)."""
    names = set()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        for statement in _statements(path.read_text(encoding="utf-8"), "binhyen"):
            created = re.match(r"CREATE (TABLE|VIEW) IF NOT EXISTS (\w+)(?![.\w])", statement)  # not <db>_private.x
            moved = re.match(r"RENAME TABLE (\w+) TO \w+\.", statement)  # out into the private database
            if created:
                names.add(created[2])
            elif moved:
                names.discard(moved[1])
    return names


def test_clickhouse_readers_get_explicit_grants_on_the_analytics_only() -> None:
    users = ET.parse(PRODUCTION / "clickhouse" / "users.xml").getroot().find("users")
    assert users is not None
    relations = analytics_relations()
    assert {"tips", "incidents", "alerts", "device_health"} <= relations and "events" not in relations
    for role in ("analyst", "grafana"):
        grants = [query.text for query in users.findall(f"{role}/grants/query")]
        assert {re.fullmatch(r"GRANT SELECT ON binhyen\.(\w+)", grant)[1] for grant in grants} == relations, role
        assert users.find(f"{role}/password") is None and users.find(f"{role}/password_sha256_hex") is not None
    assert users.find("writer/password_sha256_hex") is not None
    profiles = ET.parse(PRODUCTION / "clickhouse" / "users.xml").getroot().find("profiles")
    assert profiles is not None
    for role in ("analyst", "grafana"):
        assert profiles.findtext(f"{role}/readonly") == "1", role  # no writes, no settings, no table functions
    constraint = profiles.find("grafana/constraints/max_execution_time")
    assert constraint is not None and constraint.findtext("max") == "60"
    server = ET.parse(PRODUCTION / "clickhouse" / "config.xml").getroot()
    assert server.findtext("access_control_improvements/select_from_system_db_requires_grant") == "true"
    mounts = COMPOSE["services"]["clickhouse"]["volumes"]
    assert "./clickhouse/config.xml:/etc/clickhouse-server/config.d/binhyen.xml:ro" in mounts
    assert all("PASSWORD_SHA256" in name for name in COMPOSE["services"]["clickhouse"]["environment"])


def test_local_readers_are_readonly_1_and_kept_to_the_analysts_database() -> None:
    local = (INFRA_DIR / "clickhouse" / "config.xml.template").read_text()
    assert "<readonly>2</readonly>" not in local and local.count("<readonly>1</readonly>") == 2
    assert local.count("<allow_databases><database>{database}</database></allow_databases>") == 2
    assert "<password>" not in local and local.count("<password_sha256_hex>") == 3


def kafka_acls() -> list[tuple[str, str, str]]:
    """(principal, operation, resource) of every ACL kafka/security.sh adds, loops unrolled."""
    script = (PRODUCTION / "kafka" / "security.sh").read_text()
    inputs = re.search(r'^INPUTS="(.*)"$', script, re.M)[1].replace("$T", "binhyen").split()
    outputs = re.search(r'^OUTPUTS="(.*)"$', script, re.M)[1].replace("$T", "binhyen").split()
    acls = []
    for block in re.split(r"^(?=for |acl )", script, flags=re.M):
        loop = re.match(r"for topic in \$(\w+); do\n(.*?)^done", block, re.S | re.M)
        topics = {"INPUTS": inputs, "OUTPUTS": outputs}[loop[1]] if loop else [None]
        for line in (loop[2] if loop else block).splitlines():
            call = re.match(r"\s*acl (\w+) (\w+) (.*?)\s*(#.*)?$", line)
            if not call:
                continue
            for topic in topics:
                resource = call[3].replace('"$topic"', topic or "").replace("$T", "binhyen").replace('"', "")
                acls.append((call[1], call[2], resource))
    return acls


def test_kafka_authenticates_every_client_and_denies_what_no_acl_allows() -> None:
    kafka = COMPOSE["services"]["kafka"]["environment"]
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    listeners = dict(item.split(":", 1) for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listeners["CLIENT"] == "SASL_PLAINTEXT" and kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    for listener in kafka["KAFKA_LISTENERS"].split(","):  # only the SASL one is reachable from other hosts
        name, address = listener.split("://")
        assert name == "CLIENT" or address.startswith("localhost:"), listener
    worker = COMPOSE["services"]["worker"]["environment"]
    assert worker["BINHYEN_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert worker["BINHYEN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512" and worker["BINHYEN_KAFKA_SASL_USERNAME"] == "worker"


def test_producers_write_only_inputs_and_only_workers_write_outputs_and_control() -> None:
    acls = kafka_acls()
    inputs = {f"--topic binhyen.{name}.v1" for name in ("tips", "device-signals", "model-changes", "feedback",
                                                         "alert-actions")}
    outputs = {f"--topic binhyen.{name}.v1" for name in ("incidents", "alerts", "dead-letter", "commune-control")}
    writes = {(principal, resource) for principal, operation, resource in acls if operation in ("Write", "All")}
    assert {resource for principal, resource in writes if principal == "publisher"} == inputs
    assert {principal for principal, resource in writes if resource in outputs} == {"worker"}
    assert {resource for principal, resource in writes if principal == "worker"} == outputs | {
        "--topic $GROUP --resource-pattern-type prefixed"}  # the consumer group's prefix
    assert not {principal for principal, resource in writes} - {"publisher", "worker"}
    assert {principal for principal, operation, resource in acls
            if operation == "Read" and resource == "--topic binhyen.dead-letter.v1"} == {"dpo"}


def test_the_worker_image_does_not_run_as_root() -> None:
    dockerfile = (PRODUCTION / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert user and not user[-1].startswith(("0", "root"))


def test_only_the_gateway_holds_the_pseudonym_key_and_it_runs_replicated_behind_tls() -> None:
    services = COMPOSE["services"]
    holders = [name for name, service in services.items() if "BINHYEN_PSEUDONYM_KEY" in (service.get("environment") or {})]
    assert holders == ["gateway"]
    gateway = services["gateway"]
    assert gateway["environment"]["BINHYEN_KAFKA_SASL_USERNAME"] == "publisher"  # input topics only (ACLs)
    assert set(gateway["environment"]) <= settings_read_by_the_code()
    assert gateway["deploy"]["replicas"] >= 2 and "ports" not in gateway
    assert services["tls"]["ports"] == ["443:443", "80:80"]
    caddyfile = (PRODUCTION / "caddy" / "Caddyfile").read_text(encoding="utf-8")
    assert f"dynamic a gateway {gateway['environment']['BINHYEN_GATEWAY_PORT']}" in caddyfile
    assert "health_uri /readyz" in caddyfile
    assert services["worker"]["environment"]["BINHYEN_GATEWAY_URL"].startswith("https://")  # links in pages


def secrets_of(service: str) -> set[str]:
    """The .env secrets (passwords, secrets, keys) a service's environment is given."""
    environment = COMPOSE["services"][service].get("environment") or {}
    referenced = {name for value in environment.values() for name in re.findall(r"\$\{(\w+)", str(value))}
    return {name for name in referenced if re.search(r"PASSWORD|SECRET|_KEY\b", name)}


def test_each_service_gets_only_the_secrets_its_role_needs() -> None:
    assert {name: secrets_of(name) for name in COMPOSE["services"]} == {
        "kafka": set(),
        "kafka-security": {"KAFKA_PUBLISHER_PASSWORD", "KAFKA_WORKER_PASSWORD", "KAFKA_REPLAYER_PASSWORD",
                           "KAFKA_DPO_PASSWORD"},  # it sets every SCRAM user
        "clickhouse": {"BINHYEN_WRITER_PASSWORD_SHA256", "BINHYEN_ANALYST_PASSWORD_SHA256",
                       "BINHYEN_GRAFANA_PASSWORD_SHA256"},  # digests only
        "init": {"BINHYEN_CLICKHOUSE_PASSWORD"},  # migrations: ClickHouse only
        "worker": {"KAFKA_WORKER_PASSWORD", "BINHYEN_CLICKHOUSE_PASSWORD", "BINHYEN_WEBHOOK_SECRET",
                   "BINHYEN_LINK_SECRET"},  # signs pages and the action links in them
        # internet-facing: pseudonymises, verifies action links, publishes the input topics; nothing else
        "gateway": {"KAFKA_PUBLISHER_PASSWORD", "BINHYEN_PSEUDONYM_KEY", "BINHYEN_LINK_SECRET"},
        "tls": set(),
        "prometheus": set(),
        "alertmanager": set(),
        "grafana": {"GRAFANA_ADMIN_PASSWORD", "BINHYEN_GRAFANA_PASSWORD"},
    }
    gateway = COMPOSE["services"]["gateway"]["environment"]
    for name in ("BINHYEN_CLICKHOUSE_PASSWORD", "BINHYEN_WEBHOOK_SECRET", "BINHYEN_WEBHOOK_URLS"):
        assert name not in gateway, name
    assert not [name for name in gateway if name.startswith("BINHYEN_CLICKHOUSE_")]  # it never talks to ClickHouse
    for service in ("worker", "init"):
        assert "BINHYEN_PSEUDONYM_KEY" not in COMPOSE["services"][service]["environment"], service
    for service in ("worker", "gateway"):  # a Kafka user's own password, never another's
        environment = COMPOSE["services"][service]["environment"]
        user = environment["BINHYEN_KAFKA_SASL_USERNAME"]
        assert environment["BINHYEN_KAFKA_SASL_PASSWORD"] == f"${{KAFKA_{user.upper()}_PASSWORD:?set it in .env}}"
    assert gateway["BINHYEN_KAFKA_SASL_USERNAME"] == "publisher"
    assert COMPOSE["services"]["worker"]["environment"]["BINHYEN_KAFKA_SASL_USERNAME"] == "worker"
    # every .env secret the compose file reads is one env.example lists
    listed = set(re.findall(r"^(\w+)=", (PRODUCTION / "env.example").read_text(), re.M))
    assert set().union(*(secrets_of(name) for name in COMPOSE["services"])) <= listed


def test_the_gateways_kafka_user_may_publish_every_input_topic_and_nothing_else() -> None:
    writes = {resource for principal, operation, resource in kafka_acls()
              if principal == "publisher" and operation in ("Write", "All")}
    assert writes == {f"--topic {topic}" for topic in INPUT_TOPICS}  # alert actions from the action links included
    assert ("publisher", "IdempotentWrite", "--cluster") in kafka_acls()


def test_workers_and_the_gateway_read_the_same_mounted_staff_registry() -> None:
    for service in ("worker", "gateway"):
        definition = COMPOSE["services"][service]
        registry = definition["environment"]["BINHYEN_STAFF_CONFIG"]
        mounts = [volume.split(":") for volume in definition["volumes"]]
        source, target, mode = next(mount for mount in mounts if registry.startswith(mount[1] + "/"))
        assert mode == "ro" and (PRODUCTION / source / registry.removeprefix(target + "/")).is_file(), service


def caddy_block(text: str, header: str) -> str:
    """The body of the first `header {` block of a Caddyfile (braces balanced)."""
    start = text.index(header + " {") + len(header) + 2
    depth, at = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        at += 1
    return text[start:at - 1]


def test_only_the_api_and_health_answers_are_public_and_metrics_are_scraped_inside() -> None:
    services = COMPOSE["services"]
    gateway = services["gateway"]["environment"]
    api, metrics = gateway["BINHYEN_GATEWAY_PORT"], gateway["BINHYEN_GATEWAY_METRICS_PORT"]
    assert api != metrics and gateway["BINHYEN_METRICS_HOST"] == "0.0.0.0"  # reachable on the compose network
    caddyfile = "\n".join(line for line in (PRODUCTION / "caddy" / "Caddyfile").read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("#"))
    site = caddy_block(caddyfile, "{$BINHYEN_GATEWAY_HOST}")
    assert re.findall(r"^\s*@public path (.+)$", site, re.M) == ["/v1/* /healthz /readyz"]
    public = caddy_block(site, "handle @public")
    assert f"dynamic a gateway {api}\n" in public and "health_uri /readyz" in public
    assert caddy_block(site, "handle").strip() == "respond 404"  # everything else: /metrics, /docs, /openapi.json
    assert site.count("reverse_proxy") == 1 and "metrics" not in site and metrics not in caddyfile
    # nothing but `tls` is reachable from other hosts: the rest publish no port, or on loopback only
    for name, service in services.items():
        for port in service.get("ports", []):
            assert name == "tls" or port.startswith("127.0.0.1:"), (name, port)
    assert "ports" not in services["gateway"] and "expose" not in services["gateway"]


def test_no_table_or_view_the_readers_are_granted_holds_a_reporter_on_current_clickhouse() -> None:
    """Issue 33: joined on a tip's id, a pseudonym in `tips` let readers count verdicts per reporter.
    Every migration applied on a current ClickHouse (chdb): no granted relation has a column for it."""
    from chdb import session

    with tempfile.TemporaryDirectory() as path:
        db = session.Session(path)
        db.query("CREATE DATABASE binhyen")
        db.query("CREATE DATABASE binhyen_private")
        db.query("USE binhyen")
        for migration in sorted(MIGRATIONS_DIR.glob("*.sql")):
            for statement in _statements(migration.read_text(encoding="utf-8"), "binhyen"):
                db.query(statement)
        granted = ", ".join(f"'{name}'" for name in sorted(analytics_relations()))
        columns = str(db.query(f"SELECT table, name FROM system.columns WHERE database = 'binhyen' AND table IN "
                               f"({granted})", "CSV")).splitlines()
        assert len(columns) > 50 and '"tips","event_id"' in columns
        assert [column for column in columns if re.search(r"pseudonym|reporter|contact", column, re.I)] == []
        private = str(db.query("SELECT name FROM system.columns WHERE database = 'binhyen_private' AND "
                               "table = 'events'", "CSV"))
        assert '"payload"' in private  # the writer's raw events keep it (payload.reporter_pseudonym)
        db.close()
