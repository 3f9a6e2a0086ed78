"""Settings from the environment, with defaults for the local stack; one place for them all."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processors.alerts import AlertConfig
    from processors.credibility import CredibilityConfig
    from processors.meaning import MeaningModel
    from processors.pseudonym import EdgeCheck
    from processors.validation import TimeBounds
    from processors.staff import StaffRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent
INFRA_DIR = REPO_ROOT / "infra"
DEFAULT_CREDIBILITY_CONFIG = INFRA_DIR / "config" / "credibility.v2.json"
DEFAULT_ALERT_CONFIG = INFRA_DIR / "config" / "alerts.v3.json"
DEFAULT_MEANING_CONFIG = INFRA_DIR / "config" / "meaning.v2.json"
DEFAULT_STAFF_CONFIG = INFRA_DIR / "config" / "staff.v2.json"
WRITER_PASSWORD_FILE = "clickhouse-writer.password"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _time_bounds() -> "TimeBounds":
    """BINHYEN_MAX_CLOCK_AHEAD_MINUTES (10) and BINHYEN_EARLIEST_EVENT (2020-01-01, Vietnam time)."""
    from datetime import date, datetime, timedelta, timezone

    from processors.validation import TimeBounds

    default = TimeBounds()
    raw = os.environ.get("BINHYEN_EARLIEST_EVENT") or ""
    try:
        earliest = date.fromisoformat(raw) if raw else None
    except ValueError:
        raise ConfigError(f"BINHYEN_EARLIEST_EVENT={raw!r} is not a date (YYYY-MM-DD)") from None
    earliest_ms = default.earliest_ms if earliest is None else int(
        datetime(earliest.year, earliest.month, earliest.day, tzinfo=timezone(timedelta(hours=7))).timestamp() * 1000)
    ahead = _int("BINHYEN_MAX_CLOCK_AHEAD_MINUTES", default.ahead_ms // 60_000)
    if ahead < 0:
        raise ConfigError(f"BINHYEN_MAX_CLOCK_AHEAD_MINUTES={ahead} is negative; use 0 or more minutes")
    return TimeBounds(earliest_ms, ahead * 60_000)


def _recorded_cluster(state_dir: Path) -> str:
    try:
        return (state_dir / "cluster").read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def _load_config(kind: Any, variable: str, default: Path, what: str) -> Any:
    path = Path(os.environ.get(variable) or default)
    try:
        return kind.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} config {path} not found; set {variable}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{what} config {path} is invalid: {exc}; fix it or set {variable}") from None


# A processor version names a consumer group, topics and a database: letters, digits, dashes.
VERSION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def check_version_name(name: str) -> str:
    if not VERSION_NAME.match(name):
        raise ConfigError(f"processor version {name!r} is not a valid name; use up to 40 lowercase letters, "
                          "digits and dashes (e.g. cred-2-alerts-1)")
    return name


def _routes(spec: str) -> dict[str, str]:
    from sinks.notifiers import parse_routes

    try:
        return parse_routes(spec)
    except ValueError as exc:
        raise ConfigError(f"BINHYEN_WEBHOOK_URLS: {exc}; e.g. commune-post=http://127.0.0.1:8080/hook") from None


def _webhook_secret(required: bool) -> bytes | None:
    from sinks.notifiers import MIN_SECRET_BYTES

    secret = (os.environ.get("BINHYEN_WEBHOOK_SECRET") or "").encode("utf-8")
    if required and len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"BINHYEN_WEBHOOK_SECRET is {'empty' if not secret else 'shorter than ' + str(MIN_SECRET_BYTES) + ' bytes'}"
            f"; webhooks need it to sign pages (e.g. `openssl rand -hex 32`)"
        )
    return secret or None


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _existing_file(variable: str) -> Path | None:
    raw = os.environ.get(variable)
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"{variable}={raw}: no such file")
    return path


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to Kafka: plaintext locally, SASL and/or TLS in production."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    @classmethod
    def from_env(cls) -> "KafkaSecurity":
        protocol = (os.environ.get("BINHYEN_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        if protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(f"BINHYEN_KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {', '.join(KAFKA_PROTOCOLS)}")
        mechanism = (os.environ.get("BINHYEN_KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"BINHYEN_KAFKA_SASL_MECHANISM={mechanism!r} is not one of {', '.join(SASL_MECHANISMS)}")
        username = os.environ.get("BINHYEN_KAFKA_SASL_USERNAME") or None
        password = os.environ.get("BINHYEN_KAFKA_SASL_PASSWORD") or None
        if protocol.startswith("SASL") and not (username and password):
            raise ConfigError(f"BINHYEN_KAFKA_SECURITY_PROTOCOL={protocol} needs BINHYEN_KAFKA_SASL_USERNAME "
                              "and BINHYEN_KAFKA_SASL_PASSWORD")
        certfile, keyfile = _existing_file("BINHYEN_KAFKA_SSL_CERTFILE"), _existing_file("BINHYEN_KAFKA_SSL_KEYFILE")
        if bool(certfile) != bool(keyfile):
            raise ConfigError("BINHYEN_KAFKA_SSL_CERTFILE and BINHYEN_KAFKA_SSL_KEYFILE go together (client certificate)")
        return cls(protocol, mechanism, username, password, _existing_file("BINHYEN_KAFKA_SSL_CAFILE"), certfile, keyfile)

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def client_options(self) -> dict[str, Any]:
        """kafka-python keyword arguments (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        if self.tls:
            options.update(ssl_cafile=str(self.cafile) if self.cafile else None,
                           ssl_certfile=str(self.certfile) if self.certfile else None,
                           ssl_keyfile=str(self.keyfile) if self.keyfile else None)
        return options

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials`, or None for plaintext."""
        if self.protocol == "PLAINTEXT":
            return None
        import ssl

        import faust

        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
            if self.certfile and self.keyfile:
                context.load_cert_chain(str(self.certfile), str(self.keyfile))
        if self.protocol.startswith("SASL"):
            return faust.SASLCredentials(username=self.username, password=self.password, ssl_context=context,
                                         mechanism=self.sasl_mechanism)
        return faust.SSLCredentials(context)


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    kafka_bootstrap: str
    kafka_port: int
    clickhouse_host: str
    clickhouse_port: int
    clickhouse_http_port: int
    clickhouse_database: str
    clickhouse_user: str
    analyst_password: str
    grafana_password: str
    commune_partitions: int
    other_partitions: int
    worker_batch_size: int
    worker_batch_seconds: float
    producer_max_batch_bytes: int
    fetch_max_wait_ms: int
    webhook_urls: dict[str, str]
    webhook_secret: bytes | None
    kafka_security: KafkaSecurity
    clickhouse_secure: bool
    clickhouse_ca_file: Path | None
    metrics_host: str
    metrics_port: int
    prometheus_port: int
    worker_group: str
    time_bounds: "TimeBounds"
    # The processor version the worker runs ("" = the first deployment, configs from files) and
    # whether it is reprocessing history (its own outputs and database, no notifications).
    processor_version: str = ""
    reprocessing: bool = False
    config_texts: dict[str, str] = field(default_factory=dict)  # "credibility"/"alerts"/"meaning" -> JSON of the version
    live_since_ms: int = 0  # when the version went live: alerts written before were paged by its predecessor
    # The HTTP gateway (streams.edge.gateway): where it listens, what a request may hold, how
    # often a key may call, and its public address and link lifetime for on-call action links.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 18080
    gateway_public_url: str = ""
    gateway_max_body_bytes: int = 4 * 1024 * 1024
    gateway_max_lines: int = 5_000
    gateway_rate: float = 50.0  # requests per second per key, on average …
    gateway_burst: int = 100  # … and at most this many at once
    gateway_metrics_port: int = 19102  # its metrics, on `metrics_host`: never on the public listener
    link_ttl_s: int = 24 * 3600
    undeliverable_after_s: float = 300.0  # a page its route has not taken by then is raised on the fallback
    # A ClickHouse cluster (sinks/cluster.py): its name in remote_servers ("" = one server). The
    # local one (`binhyen up --cluster`) is ZooKeeper on `cluster_port` and a second node on the
    # three ports after it; `up --cluster` records the name in the state folder for the others.
    clickhouse_cluster: str = ""
    cluster_port: int = 19300

    @classmethod
    def from_env(cls) -> "Settings":
        """Everything from BINHYEN_* variables; defaults run the local stack from `binhyen up`."""
        state_dir = Path(os.environ.get("BINHYEN_STATE_DIR") or REPO_ROOT / ".state").resolve()
        kafka_port = _int("BINHYEN_KAFKA_PORT", 19092)
        return cls(
            state_dir=state_dir,
            kafka_bootstrap=os.environ.get("BINHYEN_KAFKA_BOOTSTRAP") or f"127.0.0.1:{kafka_port}",
            kafka_port=kafka_port,
            clickhouse_host=os.environ.get("BINHYEN_CLICKHOUSE_HOST") or "127.0.0.1",
            clickhouse_port=_int("BINHYEN_CLICKHOUSE_PORT", 19000),
            clickhouse_http_port=_int("BINHYEN_CLICKHOUSE_HTTP_PORT", 18123),
            clickhouse_database=os.environ.get("BINHYEN_CLICKHOUSE_DATABASE") or "binhyen",
            clickhouse_user=os.environ.get("BINHYEN_CLICKHOUSE_USER") or "default",
            # Local defaults; production sets its own (and its own users.xml).
            analyst_password=os.environ.get("BINHYEN_ANALYST_PASSWORD") or "analyst-local",
            grafana_password=os.environ.get("BINHYEN_GRAFANA_PASSWORD") or "grafana-local",
            commune_partitions=_int("BINHYEN_COMMUNE_PARTITIONS", 8),
            other_partitions=_int("BINHYEN_OTHER_PARTITIONS", 4),
            worker_batch_size=_int("BINHYEN_WORKER_BATCH_SIZE", 2000),
            worker_batch_seconds=float(os.environ.get("BINHYEN_WORKER_BATCH_SECONDS") or 0.05),
            # 1 = one record per produced batch. The local tansu broker reports end offsets
            # as "first offset of the last batch + 1", which makes Faust refuse (or cut short)
            # the recovery of its state tables unless every batch holds one record. The worker
            # produces little (state changes, incidents, dead letters), so this costs little;
            # on Apache Kafka set it to 16384.
            producer_max_batch_bytes=_int("BINHYEN_PRODUCER_MAX_BATCH_BYTES", 1),
            fetch_max_wait_ms=_int("BINHYEN_FETCH_MAX_WAIT_MS", 100),
            webhook_urls=(routes := _routes(os.environ.get("BINHYEN_WEBHOOK_URLS") or "")),
            webhook_secret=_webhook_secret(required=bool(routes)),
            kafka_security=KafkaSecurity.from_env(),
            clickhouse_secure=_int("BINHYEN_CLICKHOUSE_SECURE", 0) == 1,
            clickhouse_ca_file=_existing_file("BINHYEN_CLICKHOUSE_CA_FILE"),
            metrics_host=os.environ.get("BINHYEN_METRICS_HOST") or "127.0.0.1",
            metrics_port=_int("BINHYEN_METRICS_PORT", 19100),
            prometheus_port=_int("BINHYEN_PROMETHEUS_PORT", 19090),
            # The consumer group and the prefix of the state changelog topics.
            worker_group=os.environ.get("BINHYEN_WORKER_GROUP") or "binhyen-worker",
            time_bounds=_time_bounds(),
            gateway_host=os.environ.get("BINHYEN_GATEWAY_HOST") or "127.0.0.1",
            gateway_port=_int("BINHYEN_GATEWAY_PORT", 18080),
            gateway_public_url=os.environ.get("BINHYEN_GATEWAY_URL") or "",
            gateway_max_body_bytes=_int("BINHYEN_GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024),
            gateway_max_lines=_int("BINHYEN_GATEWAY_MAX_LINES", 5_000),
            gateway_rate=float(os.environ.get("BINHYEN_GATEWAY_RATE") or 50.0),
            gateway_burst=_int("BINHYEN_GATEWAY_BURST", 100),
            gateway_metrics_port=_int("BINHYEN_GATEWAY_METRICS_PORT", 19102),
            link_ttl_s=_int("BINHYEN_LINK_TTL_S", 24 * 3600),
            undeliverable_after_s=_int("BINHYEN_UNDELIVERABLE_AFTER_S", 300),
            clickhouse_cluster=os.environ.get("BINHYEN_CLICKHOUSE_CLUSTER") or _recorded_cluster(state_dir),
            cluster_port=_int("BINHYEN_CLUSTER_PORT", 19300),
        )

    @property
    def cluster_file(self) -> Path:
        """Written by `binhyen up --cluster`: the local stack is the cluster named in it."""
        return self.state_dir / "cluster"

    def for_version(self, name: str, config_texts: dict[str, str], reprocessing: bool,
                    live_since_ms: int = 0) -> "Settings":
        """These settings as a worker of processor version `name` sees them: a consumer group (and
        so state) of its own, its configs; when reprocessing, a database of its own too."""
        check_version_name(name)
        database = f"{self.clickhouse_database}_{name.replace('-', '_')}" if reprocessing else self.clickhouse_database
        return replace(self, worker_group=f"{self.worker_group}.{name}", processor_version=name,
                       reprocessing=reprocessing, config_texts=dict(config_texts), clickhouse_database=database,
                       live_since_ms=live_since_ms)

    @property
    def faust_dir(self) -> Path:
        """The worker's local state (one directory per consumer group: their tables share names)."""
        return self.state_dir / "faust" / self.worker_group

    def credibility_config(self) -> "CredibilityConfig":
        """Weights of the credibility scorer (BINHYEN_CREDIBILITY_CONFIG or the shipped v1)."""
        from processors.credibility import CredibilityConfig

        if "credibility" in self.config_texts:
            return CredibilityConfig.parse(self.config_texts["credibility"])
        return _load_config(CredibilityConfig, "BINHYEN_CREDIBILITY_CONFIG", DEFAULT_CREDIBILITY_CONFIG, "credibility")

    def meaning_model(self) -> "MeaningModel":
        """What a tip's text says (BINHYEN_MEANING_CONFIG or the shipped meaning.v2.json)."""
        from processors.meaning import MeaningModel

        if self.config_texts.get("meaning"):
            return MeaningModel.parse(self.config_texts["meaning"])
        return _load_config(MeaningModel, "BINHYEN_MEANING_CONFIG", DEFAULT_MEANING_CONFIG, "meaning")

    def alert_config(self) -> "AlertConfig":
        """Alert rules and routes (BINHYEN_ALERT_CONFIG or the shipped alerts.v3.json)."""
        from processors.alerts import AlertConfig

        if "alerts" in self.config_texts:
            return AlertConfig.parse(self.config_texts["alerts"])
        return _load_config(AlertConfig, "BINHYEN_ALERT_CONFIG", DEFAULT_ALERT_CONFIG, "alert")

    @property
    def gateway_url(self) -> str:
        """The gateway's address as staff and upstream systems reach it (links in pages use it)."""
        return (self.gateway_public_url or f"http://127.0.0.1:{self.gateway_port}").rstrip("/")

    @property
    def gateway_keys_file(self) -> Path:
        return self.state_dir / "gateway-keys.json"

    @property
    def link_secret_file(self) -> Path:
        return self.state_dir / "link.secret"

    def link_secret(self) -> bytes | None:
        """The action links' signing key: BINHYEN_LINK_SECRET, else the file `binhyen up` created;
        None when neither exists (pages then carry no links)."""
        secret = os.environ.get("BINHYEN_LINK_SECRET", "").encode() or _read_secret(self.link_secret_file).encode()
        if secret and len(secret) < 32:
            raise ConfigError("BINHYEN_LINK_SECRET is shorter than 32 characters; use 32+ random bytes")
        return secret or None

    def ensure_link_secret(self) -> bool:
        return not os.environ.get("BINHYEN_LINK_SECRET") and _create_secret(self.link_secret_file)

    @property
    def staff_config_path(self) -> Path:
        return Path(os.environ.get("BINHYEN_STAFF_CONFIG") or DEFAULT_STAFF_CONFIG)

    def staff_registry(self) -> "StaffRegistry":
        """Who is on call for which route and jurisdiction (BINHYEN_STAFF_CONFIG or the shipped staff.v2.json)."""
        from processors.staff import StaffRegistry

        return _load_config(StaffRegistry, "BINHYEN_STAFF_CONFIG", DEFAULT_STAFF_CONFIG, "staff")

    @property
    def key_file(self) -> Path:
        return self.state_dir / "pseudonym.key"

    def pseudonym_key(self) -> bytes:
        """The HMAC key: BINHYEN_PSEUDONYM_KEY, else the key file `binhyen up` created."""
        env_key = os.environ.get("BINHYEN_PSEUDONYM_KEY")
        if env_key:
            if len(env_key) < 16:
                raise ConfigError("BINHYEN_PSEUDONYM_KEY is shorter than 16 characters; use 32+ random bytes")
            return env_key.encode("utf-8")
        try:
            key = self.key_file.read_bytes().strip()
        except FileNotFoundError:
            raise ConfigError(
                f"no pseudonym key: set BINHYEN_PSEUDONYM_KEY or run `binhyen up` to create {self.key_file}"
            ) from None
        if len(key) < 16:
            raise ConfigError(f"{self.key_file} holds fewer than 16 bytes; delete it and run `binhyen up`")
        return key

    def edge_check(self) -> "EdgeCheck | None":
        """What verifies pseudonyms and text tokens in the worker: BINHYEN_EDGE_CHECK_KEY (hex, from
        `binhyen gateway check-key`), else derived from the pseudonym key where it is at hand (the
        local stack); None when neither is (nothing is verified)."""
        from processors.pseudonym import EdgeCheck, check_key_of

        hex_key = os.environ.get("BINHYEN_EDGE_CHECK_KEY", "").strip()
        if hex_key:
            try:
                key = bytes.fromhex(hex_key)
            except ValueError:
                raise ConfigError("BINHYEN_EDGE_CHECK_KEY is not hex; set it to what `binhyen gateway check-key` "
                                  "prints") from None
            if len(key) != 32:
                raise ConfigError("BINHYEN_EDGE_CHECK_KEY must be 64 hex digits (`binhyen gateway check-key`)")
            return EdgeCheck(key)
        try:
            return EdgeCheck(check_key_of(self.pseudonym_key()))
        except ConfigError:
            return None

    @property
    def writer_password_file(self) -> Path:
        return self.state_dir / WRITER_PASSWORD_FILE

    @property
    def clickhouse_password(self) -> str:
        """The writer's password: BINHYEN_CLICKHOUSE_PASSWORD, else the file `binhyen up` created
        (read when needed, so a password created after these settings were read is found)."""
        return os.environ.get("BINHYEN_CLICKHOUSE_PASSWORD") or _read_secret(self.writer_password_file)

    def ensure_key_file(self) -> bool:
        """Create the key file (mode 0600) unless it exists; True when created now."""
        return _create_secret(self.key_file)

    def ensure_writer_password(self) -> bool:
        """Create the local ClickHouse writer's password file (mode 0600) unless the environment
        sets a password or the file exists; True when created now."""
        return not os.environ.get("BINHYEN_CLICKHOUSE_PASSWORD") and _create_secret(self.writer_password_file)


def _create_secret(path: Path) -> bool:
    """32 random bytes in hex into a new file of mode 0600; False when it exists already."""
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
