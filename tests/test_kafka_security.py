"""Kafka over TLS with a SCRAM login: the settings, and the pipeline on a broker's SASL_SSL listener.

The broker (devtools.broker's, with a SASL_SSL listener beside its PLAINTEXT one) gets a throwaway
CA and certificate made here with the openssl command. The worker, the replay and the tail are
given only the SASL_SSL listener's address, and must give the offline backtest's alerts.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from devtools.broker import Broker, stop
from schemas.kafka import KafkaConnection, SaslLogin, TlsOptions
from schemas.outputs import Alert
from services.kafka.connection import faust_credentials
from services.settings import load_settings
from tests.kafka_fixtures import start_test_broker
from tests.live import (
    CRISISMON,
    WorkerProcess,
    backtest_alert_ids,
    by_dyad,
    clean_env,
    eventually,
    replay,
    wait_processed,
)
from tests.ports import free_port

ARTICLE = Path(__file__).parent.parent / "replay" / "data" / "pakistan-iran-2024.jsonl"
USER, PASSWORD = "alice", "alice-s3cret-pw"
NAMESPACE = "secured"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    """The CA the clients trust."""
    keystore: Path
    """The broker's key and certificate chain (for 127.0.0.1 and localhost), signed by `ca`."""
    stranger_ca: Path
    """A CA that signed nothing the broker shows."""


def openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> Certificates:
    """A CA, a server certificate it signs, and an unrelated CA: RSA keys, a day's validity."""
    for name in ("ca", "stranger-ca"):
        openssl(
            directory,
            *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN=CrisisMon {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem"),
        )
    openssl(
        directory,
        *("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"),
        *("-keyout", "server.key", "-out", "server.csr"),
    )
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        directory,
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "1"),
        *("-days", "1", "-extfile", "server.ext", "-out", "server.pem"),
    )
    keystore = directory / "keystore.pem"  # what Kafka's PEM keystore reads: the key, then the chain
    keystore.write_text(
        "".join((directory / name).read_text() for name in ("server.key", "server.pem", "ca.pem"))
    )
    return Certificates(directory / "ca.pem", keystore, directory / "stranger-ca.pem")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[Broker]:
    broker = start_test_broker(
        tmp_path_factory.mktemp("kafka-secured"), keystore=certificates.keystore, scram_users={USER: PASSWORD}
    )
    try:
        yield broker
    finally:
        stop(broker)


def sasl_ssl_environment(cafile: Path, password: str = PASSWORD) -> dict[str, str]:
    """The CRISISMON_* settings of a client of the secured listener (the README's example)."""
    return {
        "CRISISMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CRISISMON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "CRISISMON_KAFKA_SASL_USERNAME": USER,
        "CRISISMON_KAFKA_SASL_PASSWORD": password,
        "CRISISMON_KAFKA_SSL_CAFILE": str(cafile),
    }


def sasl_ssl_address(broker: Broker) -> str:
    assert broker.sasl_ssl_bootstrap is not None
    return broker.sasl_ssl_bootstrap


def crisismon(*args: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRISISMON, *args], capture_output=True, text=True, env=clean_env(**environment), timeout=120
    )


def test_the_article_over_sasl_ssl_gives_the_backtests_alerts(
    secured_broker: Broker, certificates: Certificates, tmp_path: Path
) -> None:
    """Every client on the secured listener: the replay's, the worker's (Faust's, its offset guards',
    its API's feed and intake) and the tail's."""
    address, environment = sasl_ssl_address(secured_broker), sasl_ssl_environment(certificates.ca)
    expected = backtest_alert_ids(ARTICLE)
    worker = WorkerProcess(address, NAMESPACE, tmp_path / "worker", environment).start()
    try:
        replay(ARTICLE, address, NAMESPACE, environment=environment)
        login = SaslLogin("SCRAM-SHA-256", USER, SecretStr(PASSWORD))
        wait_processed(KafkaConnection(address, login, TlsOptions(certificates.ca)), NAMESPACE, 120, worker)
        tail = crisismon(
            *("alerts", "tail", "--bootstrap", address, "--namespace", NAMESPACE),
            *("--from-beginning", "--json", "--idle-exit", "3"),
            environment=environment,
        )
        worker.wait_for_web()
        shown = eventually(
            lambda: len(ids := worker.get_json("/api/alerts?limit=100")["alerts"]) == 3 and ids,
            what="the worker's API (its feed of the topics) to show the alerts",
        )
        status, answer = post_event(worker, ARTICLE.read_text().splitlines()[0])  # a repeat: no new alert
    finally:
        worker.stop()
    assert tail.returncode == 0, tail.stderr
    alerts = [Alert.model_validate_json(line) for line in tail.stdout.splitlines()]
    assert sum(map(len, expected.values())) == 3 and by_dyad(alerts) == expected, worker.log_text()
    assert {alert["alert_id"] for alert in shown} == {alert.alert_id for alert in alerts}
    assert status == 200 and len(answer["accepted"]) == 1, answer  # acknowledged through the intake
    assert PASSWORD not in worker.log_text()


def post_event(worker: WorkerProcess, line: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{worker.url}/api/events", line.encode(), {"Content-Type": "application/x-ndjson"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return int(answer.status), json.load(answer)


@pytest.mark.parametrize("command", [["replay", str(ARTICLE)], ["alerts", "tail", "--idle-exit", "1"]])
def test_a_wrong_password_is_one_line_and_exit_2(
    secured_broker: Broker, certificates: Certificates, command: list[str]
) -> None:
    wrong = "not-" + PASSWORD
    run = crisismon(
        *command,
        *("--bootstrap", sasl_ssl_address(secured_broker), "--namespace", NAMESPACE),
        environment=sasl_ssl_environment(certificates.ca, password=wrong),
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("crisismon: error: cannot reach Kafka")
    assert "Authentication failed" in run.stderr and "invalid credentials" in run.stderr
    assert wrong not in run.stderr + run.stdout


@pytest.mark.parametrize(
    "command", [["worker", "--web-port", str(free_port())], ["follow", "dir", ".", "--once"]]
)
def test_a_service_refused_by_the_broker_says_why_at_once_instead_of_waiting(
    secured_broker: Broker, certificates: Certificates, command: list[str], tmp_path: Path
) -> None:
    """A worker or follower waits for a broker that does not answer; one that answers and
    refuses the login will not change its mind: one line, exit 2, the reason in it."""
    wrong = "not-" + PASSWORD
    run = crisismon(
        *command,
        *("--bootstrap", sasl_ssl_address(secured_broker), "--namespace", NAMESPACE),
        environment={
            **sasl_ssl_environment(certificates.ca, password=wrong),
            "CRISISMON_DATA_DIR": str(tmp_path),
        },
    )
    assert run.returncode == 2, run.stderr
    refusal = run.stderr.strip().splitlines()[-1]
    assert refusal.startswith("crisismon: error:") and "refuses this client: login refused" in refusal
    assert wrong not in run.stderr + run.stdout


def test_a_broker_certificate_from_another_ca_is_one_line_and_exit_2(
    secured_broker: Broker, certificates: Certificates
) -> None:
    run = crisismon(
        *("alerts", "tail", "--idle-exit", "1"),
        *("--bootstrap", sasl_ssl_address(secured_broker), "--namespace", NAMESPACE),
        environment=sasl_ssl_environment(certificates.stranger_ca),
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "certificate verify failed" in run.stderr


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL"},
            "kafka_security_protocol SASL_SSL needs kafka_sasl_username and kafka_sasl_password",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": USER},
            "kafka_security_protocol SASL_PLAINTEXT needs kafka_sasl_password",
        ),
        (
            {"kafka_sasl_username": USER, "kafka_sasl_password": PASSWORD},
            "kafka_security_protocol PLAINTEXT does not log in",
        ),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "missing.pem"}, "kafka_ssl_cafile"),
        ({"kafka_ssl_cafile": __file__}, "kafka_security_protocol PLAINTEXT is not TLS"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": __file__},
            f"cannot load the CA file {__file__}",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": __file__},
            "kafka_ssl_keyfile needs kafka_ssl_certfile",
        ),
    ],
)
def test_incomplete_or_contradictory_kafka_security_is_refused(
    settings: dict[str, str], refusal: str
) -> None:
    with pytest.raises(ValidationError, match=refusal) as refused:
        load_settings(None, **settings)
    assert PASSWORD not in str(refused.value)


def test_the_cli_refuses_an_incomplete_sasl_config_on_one_line() -> None:
    environment = sasl_ssl_environment(Path(__file__))
    del environment["CRISISMON_KAFKA_SASL_USERNAME"]
    del environment["CRISISMON_KAFKA_SSL_CAFILE"]
    run = crisismon("alerts", "tail", "--idle-exit", "1", environment=environment)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "invalid settings" in run.stderr and "needs kafka_sasl_username" in run.stderr
    assert PASSWORD not in run.stderr


def test_settings_make_the_connection_and_never_show_the_password(
    certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sasl_ssl_environment(certificates.ca).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    kafka = settings.kafka_connection()
    assert kafka.security_protocol == "SASL_SSL"
    assert kafka == KafkaConnection(
        settings.kafka_bootstrap,
        SaslLogin("SCRAM-SHA-256", USER, SecretStr(PASSWORD)),
        TlsOptions(certificates.ca),
    )
    assert PASSWORD not in f"{settings!r} {kafka!r} {kafka}"


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_gets_the_options_every_other_client_gets(certificates: Certificates, protocol: str) -> None:
    """The worker's Faust app (its consumer, producer and topic creation) and the plain aiokafka
    clients connect alike: faust's own translation of the credentials gives the same options."""
    login = SaslLogin("SCRAM-SHA-512", USER, SecretStr(PASSWORD)) if protocol.startswith("SASL") else None
    tls = TlsOptions(certificates.ca, check_hostname=False) if protocol.endswith("SSL") else None
    kafka = KafkaConnection("127.0.0.1:9093", login, tls)
    assert kafka.security_protocol == protocol
    options: dict[str, object] = dict(kafka.client_options())
    del options["bootstrap_servers"]
    faust_options = credentials_to_aiokafka_auth(faust_credentials(kafka))
    assert {k: v for k, v in faust_options.items() if v is not None}.keys() == options.keys()
    for name, value in options.items():
        if name == "ssl_context":
            assert faust_options[name].check_hostname is False and faust_options[name].get_ca_certs()
        else:
            assert faust_options[name] == value
