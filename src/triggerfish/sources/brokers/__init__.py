"""Sources that take events from message brokers: Redis, NATS, RabbitMQ, MQTT and
PostgreSQL. Each driver is imported only when a source of its kind starts."""

from typing import Any

from triggerfish.sources.brokers.amqp import AmqpKind
from triggerfish.sources.brokers.base import BrokerKind, BrokerOptions, BrokerSource
from triggerfish.sources.brokers.mqtt import MqttKind
from triggerfish.sources.brokers.nats import JetStreamKind, NatsKind
from triggerfish.sources.brokers.postgres import PostgresNotifyKind, PostgresOutboxKind
from triggerfish.sources.brokers.redis import RedisPubSubKind, RedisStreamsKind


def broker_kinds() -> list[BrokerKind[Any]]:
    """One of each broker source kind, for ``Node.source_kinds``."""
    return [
        RedisStreamsKind(),
        RedisPubSubKind(),
        NatsKind(),
        JetStreamKind(),
        AmqpKind(),
        MqttKind(),
        PostgresNotifyKind(),
        PostgresOutboxKind(),
    ]


__all__ = [
    "AmqpKind",
    "BrokerKind",
    "BrokerOptions",
    "BrokerSource",
    "JetStreamKind",
    "MqttKind",
    "NatsKind",
    "PostgresNotifyKind",
    "PostgresOutboxKind",
    "RedisPubSubKind",
    "RedisStreamsKind",
    "broker_kinds",
]
