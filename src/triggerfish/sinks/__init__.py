"""Sinks: sending events to external brokers (Redis, NATS, RabbitMQ, MQTT, PostgreSQL)
through a durable relay. Each driver is imported only when its sink first connects."""

from triggerfish.sinks.base import Sink, SinkRejectedError, SinkStats
from triggerfish.sinks.message import SINK_ADDRESS, sink_topic
from triggerfish.sinks.registry import SINKS, Sinks, delete_broker, make_sink, save_broker
from triggerfish.sinks.relay import RELAY_GROUP, SinkRelay

__all__ = [
    "RELAY_GROUP",
    "SINKS",
    "SINK_ADDRESS",
    "Sink",
    "SinkRejectedError",
    "SinkRelay",
    "SinkStats",
    "Sinks",
    "delete_broker",
    "make_sink",
    "save_broker",
    "sink_topic",
]
