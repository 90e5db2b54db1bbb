"""The producer APIs: EventBridge ``PutEvents`` and SQS ``SendMessage`` onto topics."""

from triggerfish.api.producers.app import Producers, target_of

__all__ = ["Producers", "target_of"]
