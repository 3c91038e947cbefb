"""How to reach Kafka: the connection every Kafka client of the project is made from.

It lives here, in the bottom layer, because both Kafka adapters open clients (`services.kafka`:
the worker, its guards, the feed, the intake, the tail; `replay`: the producer and a follower's
progress) and neither may import the other. The entry points build it from the settings
(`Settings.kafka_connection`) and hand it down; an adapter never reads a setting, and every
aiokafka client takes its options from `KafkaConnection.client_options` (the Faust worker from
`services.kafka.connection.faust_credentials`, built from the same fields).

Kafka calls TLS "SSL" (`SSL`, `SASL_SSL`); the names here follow it where they meet Kafka's.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Required, TypedDict

from pydantic import SecretStr

OUTAGE_TIMEOUT_SECONDS = 300.0
"""How long a client waits for a broker that went away, unless told otherwise
(`kafka_outage_timeout`)."""

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]


@dataclass(frozen=True)
class SaslLogin:
    """Who a client logs in as (SASL). The password stays a SecretStr until a client takes it,
    so a log line or a repr shows `**********`."""

    mechanism: SaslMechanism
    username: str
    password: SecretStr


@dataclass(frozen=True)
class TlsOptions:
    """How a client checks the brokers' certificates and, for mutual TLS, shows its own."""

    cafile: Path | None = None
    """The CA certificates (PEM) the brokers' certificates must chain to; None: the system's."""
    certfile: Path | None = None
    """The client's certificate chain (PEM) for mutual TLS; it may hold the key too."""
    keyfile: Path | None = None
    """The client's private key (PEM), when not in `certfile`."""
    check_hostname: bool = True
    """Whether a broker's certificate must name the host it was reached at (the chain is
    always checked)."""

    def context(self) -> ssl.SSLContext:
        """A client context from the files, read now; ValueError naming the file that does not load."""
        try:
            context = ssl.create_default_context(cafile=self.cafile)
        except OSError as error:  # ssl.SSLError too
            raise ValueError(f"cannot load the CA file {self.cafile}: {_reason(error)}") from error
        context.check_hostname = self.check_hostname
        if self.certfile is not None:
            try:
                context.load_cert_chain(self.certfile, self.keyfile)
            except OSError as error:
                files = f"{self.certfile}" + (f" with the key {self.keyfile}" if self.keyfile else "")
                raise ValueError(f"cannot load the client certificate {files}: {_reason(error)}") from error
        return context


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


class ClientOptions(TypedDict, total=False):
    """The connection keywords AIOKafkaConsumer, AIOKafkaProducer and AIOKafkaAdminClient share."""

    bootstrap_servers: Required[str]
    security_protocol: Required[SecurityProtocol]
    ssl_context: ssl.SSLContext
    sasl_mechanism: SaslMechanism
    sasl_plain_username: str
    sasl_plain_password: str


@dataclass(frozen=True)
class KafkaConnection:
    """The brokers' address and how to talk to them: over TLS when `tls` is given, logged in
    when `sasl` is. `KafkaConnection("127.0.0.1:9092")` is plain, unauthenticated Kafka."""

    bootstrap: str
    """HOST:PORT of a broker to start from."""
    sasl: SaslLogin | None = None
    tls: TlsOptions | None = None

    @property
    def security_protocol(self) -> SecurityProtocol:
        if self.sasl is not None:
            return "SASL_SSL" if self.tls is not None else "SASL_PLAINTEXT"
        return "SSL" if self.tls is not None else "PLAINTEXT"

    def client_options(self) -> ClientOptions:
        """aiokafka's keywords for a new client: `AIOKafkaConsumer(*topics, **kafka.client_options(),
        group_id=...)`. The TLS files are read at each call, so a renewed certificate is taken
        by the next client made."""
        options: ClientOptions = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.tls is not None:
            options["ssl_context"] = self.tls.context()
        if self.sasl is not None:
            options["sasl_mechanism"] = self.sasl.mechanism
            options["sasl_plain_username"] = self.sasl.username
            options["sasl_plain_password"] = self.sasl.password.get_secret_value()
        return options

    def __str__(self) -> str:
        """For messages: the address, and how it is reached when not in plain text (no secret)."""
        if self.sasl is not None:
            return (
                f"{self.bootstrap} ({self.security_protocol}, {self.sasl.mechanism} as {self.sasl.username})"
            )
        return self.bootstrap if self.tls is None else f"{self.bootstrap} (SSL)"
