"""The application layer: every change of what is deployed, and the reads the APIs
answer, through one ``Control`` (see ``control.control``). The values its methods
return are listed here too, so its callers need nothing from the store or the bus."""

from triggerfish.bus.base import GroupInfo, PublishResult, StoredEvent, TopicInfo
from triggerfish.control.aliases import Aliases
from triggerfish.control.brokers import Brokers
from triggerfish.control.bucket_settings import BucketSettings
from triggerfish.control.control import Control
from triggerfish.control.functions import Functions
from triggerfish.control.housekeeping import Housekeeping
from triggerfish.control.invocations import Invocations
from triggerfish.control.secrets import Reference, SecretListing, Secrets
from triggerfish.control.specs import Specs
from triggerfish.control.topics import DeadLetters, Topics
from triggerfish.control.webhooks import Webhooks
from triggerfish.store.records import (
    LIVE,
    AliasRecord,
    InvocationRecord,
    TriggerRecord,
    VersionRecord,
)

__all__ = [
    "LIVE",
    "AliasRecord",
    "Aliases",
    "Brokers",
    "BucketSettings",
    "Control",
    "DeadLetters",
    "Functions",
    "GroupInfo",
    "Housekeeping",
    "InvocationRecord",
    "Invocations",
    "PublishResult",
    "Reference",
    "SecretListing",
    "Secrets",
    "Specs",
    "StoredEvent",
    "TopicInfo",
    "Topics",
    "TriggerRecord",
    "VersionRecord",
    "Webhooks",
]
