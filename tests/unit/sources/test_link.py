"""The framing between a node and its source process: messages arrive whole and in
order, a closed end reads as None, and a frame over the limit is refused."""

from __future__ import annotations

import socket

import pytest

from triggerfish.sources.link import (
    HEADER,
    MAX_FRAME,
    Committed,
    Link,
    LinkError,
    Publish,
    Start,
    Stats,
    ToHost,
    ToNode,
)


async def pair() -> tuple[Link, Link]:
    node_end, host_end = socket.socketpair()
    return await Link.open(node_end, ToNode), await Link.open(host_end, ToHost)


async def test_messages_cross_whole_and_in_order() -> None:
    node, host = await pair()
    try:
        start = Start("f.t", "redis", "_source.f.t", {"url": "redis://h"}, {"a": [1]}, "/d")
        node.send(start)
        node.send(Committed(7, ""))
        events = [b"x" * 200_000, b"", b"\x00\xff"]
        host.send(Publish(1, "_source.f.t", events))
        host.send(Stats([{"trigger": "f.t", "received": 3}]))
        assert await host.receive() == start
        assert await host.receive() == Committed(7, "")
        assert await node.receive() == Publish(1, "_source.f.t", events)
        assert await node.receive() == Stats([{"trigger": "f.t", "received": 3}])
    finally:
        node.close()
        host.close()


async def test_a_closed_end_reads_as_none_and_sends_nothing() -> None:
    node, host = await pair()
    node.close()
    assert await host.receive() is None
    assert host.closed
    host.send(Committed(1))  # no error: the node is gone, nothing to tell it
    host.close()


async def test_a_frame_over_the_limit_is_refused() -> None:
    raw, far = socket.socketpair()
    link = await Link.open(far, ToNode)
    try:
        raw.sendall((MAX_FRAME + 1).to_bytes(HEADER, "big"))
        with pytest.raises(LinkError, match="over the limit"):
            await link.receive()
    finally:
        raw.close()
        link.close()


async def test_a_frame_of_another_protocol_is_refused() -> None:
    raw, far = socket.socketpair()
    link = await Link.open(far, ToNode)
    try:
        raw.sendall((3).to_bytes(HEADER, "big") + b"abc")
        with pytest.raises(LinkError, match="unreadable"):
            await link.receive()
    finally:
        raw.close()
        link.close()
