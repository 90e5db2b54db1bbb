from triggerfish.bus.base import Bus, Delivery, GroupInfo, PublishResult, StoredEvent, TopicInfo
from triggerfish.bus.memory import MemoryBus
from triggerfish.bus.sqlite import SqliteBus

__all__ = [
    "Bus",
    "Delivery",
    "GroupInfo",
    "MemoryBus",
    "PublishResult",
    "SqliteBus",
    "StoredEvent",
    "TopicInfo",
]
