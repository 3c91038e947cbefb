"""The connection (schemas.kafka) in Faust's terms, for the worker's app.

Faust hands `broker_credentials` to every aiokafka client it makes (its consumer, its producer,
the client that creates its changelog topics), through faust's own translation
(`faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth`): the credentials below must
come out as `KafkaConnection.client_options` does, which tests/test_kafka_security.py checks.
"""

from __future__ import annotations

import faust
from faust.types.auth import CredentialsT

from schemas.kafka import KafkaConnection


def faust_credentials(kafka: KafkaConnection) -> CredentialsT | None:
    """Faust's `broker_credentials` for this connection; None for plain Kafka."""
    ssl_context = kafka.tls.context() if kafka.tls is not None else None
    if kafka.sasl is not None:
        return faust.SASLCredentials(
            mechanism=kafka.sasl.mechanism,
            username=kafka.sasl.username,
            password=kafka.sasl.password.get_secret_value(),
            ssl_context=ssl_context,
        )
    if ssl_context is not None:
        return faust.SSLCredentials(ssl_context)
    return None
