from triggerfish.events.create import new_event, new_event_id, now_rfc3339
from triggerfish.events.http import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    content_mode,
    parse_http,
    to_binary_http,
)
from triggerfish.events.model import Event, decode_event, encode_event
from triggerfish.events.structured import (
    event_from_dict,
    parse_batch,
    parse_structured,
    to_batch_json,
    to_structured_json,
)
from triggerfish.events.validate import validate_event

__all__ = [
    "BATCH_CONTENT_TYPE",
    "STRUCTURED_CONTENT_TYPE",
    "Event",
    "content_mode",
    "decode_event",
    "encode_event",
    "event_from_dict",
    "new_event",
    "new_event_id",
    "now_rfc3339",
    "parse_batch",
    "parse_http",
    "parse_structured",
    "to_batch_json",
    "to_binary_http",
    "to_structured_json",
    "validate_event",
]
