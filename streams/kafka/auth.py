"""How every Kafka client of tally authenticates: one translation of the settings for aiokafka
(producers, admin, lag checks) and one for faust (the worker), so no client is left in PLAINTEXT.

Production (docker-compose.yml): SASL/SCRAM over TLS, each kind of client its own user, ACLs on the
broker (gateways may only write `tally.submissions`). The embedded Tansu 0.6.0 cannot be run with
authentication here (see docs/trust.md), so the embedded default is PLAINTEXT on loopback.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaAuthError(ValueError):
    """The Kafka security settings do not make sense together."""


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.kafka_ca_file)
    return context


def _check(settings: Settings) -> str:
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise KafkaAuthError(
            f"TALLY_KAFKA_SECURITY_PROTOCOL={protocol!r}: expected one of {', '.join(PROTOCOLS)}"
        )
    if protocol.startswith("SASL"):
        if settings.kafka_sasl_mechanism not in MECHANISMS:
            raise KafkaAuthError(
                f"TALLY_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism!r}: expected one of "
                f"{', '.join(MECHANISMS)}"
            )
        if not settings.kafka_username or not settings.kafka_password:
            raise KafkaAuthError(f"{protocol} needs TALLY_KAFKA_USERNAME and TALLY_KAFKA_PASSWORD")
    return protocol


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin client."""
    protocol = _check(settings)
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_username,
            sasl_plain_password=settings.kafka_password,
        )
    return options


def faust_options(settings: Settings) -> dict[str, Any]:
    """faust App settings giving its consumer and producer the same credentials."""
    protocol = _check(settings)
    context = _ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(
            username=settings.kafka_username,
            password=settings.kafka_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
        return {"broker_credentials": credentials}
    if protocol == "SSL":
        return {"broker_credentials": faust.SSLCredentials(context)}
    return {}
