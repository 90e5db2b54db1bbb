"""The view of a CloudEvent that patterns apply to.

A pattern is matched against the event's JSON structured form, the same dict a
handler receives: the attributes (``id``, ``source``, ``type``, ``specversion``,
``subject``, ``time``, ``datacontenttype``, ``dataschema``) and every extension at
the top level, and ``data`` parsed when it is JSON (text data is a string, binary
data appears only as ``data_base64``). So ``{"type": [{"prefix": "order."}]}``
filters on an attribute and ``{"data": {"total": [{"numeric": [">", 100]}]}}`` on
the payload.
"""

from __future__ import annotations

from typing import Any

from triggerfish.events.model import Event


def event_view(event: Event) -> dict[str, Any]:
    """The dict that patterns apply to for ``event`` (its JSON structured form)."""
    return event.to_dict()
