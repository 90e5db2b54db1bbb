"""The environment's end of the protocol socket: whole messages however the bytes
arrive, and None once the executor's end closes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from triggerfish.runtime.protocol import Init, Invoke, encode_frame
from triggerfish.runtime.python.bootstrap import READ_SIZE, Channel


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, Channel]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield ours, Channel(theirs.fileno())


def _invoke(index: int, payload: bytes = b"{}") -> Invoke:
    return Invoke(f"req-{index}", payload, "arn:aws:lambda:us-east-1:0:function:f")


def test_several_frames_in_one_write_come_out_one_by_one(
    pair: tuple[socket.socket, Channel],
) -> None:
    ours, channel = pair
    init = Init("main.handler", "f", "v1", 128, 3.0, 1024, "group", "stream", "/code")
    ours.sendall(bytes(encode_frame(init) + encode_frame(_invoke(1)) + encode_frame(_invoke(2))))
    assert channel.receive() == init
    assert channel.receive() == _invoke(1)
    assert channel.receive() == _invoke(2)
    ours.close()
    assert channel.receive() is None


def test_a_frame_that_arrives_byte_by_byte_is_read_whole(
    pair: tuple[socket.socket, Channel],
) -> None:
    ours, channel = pair
    frame = bytes(encode_frame(_invoke(1)))

    def trickle() -> None:
        for index in range(len(frame)):
            ours.sendall(frame[index : index + 1])

    sender = threading.Thread(target=trickle)
    sender.start()
    assert channel.receive() == _invoke(1)
    sender.join()


def test_a_frame_larger_than_one_read(pair: tuple[socket.socket, Channel]) -> None:
    ours, channel = pair
    message = _invoke(1, b"x" * (5 * READ_SIZE + 3))
    sender = threading.Thread(target=ours.sendall, args=(bytes(encode_frame(message)),))
    sender.start()
    assert channel.receive() == message
    sender.join()


def test_a_close_in_the_middle_of_a_frame_ends_the_channel(
    pair: tuple[socket.socket, Channel],
) -> None:
    ours, channel = pair
    ours.sendall(bytes(encode_frame(_invoke(1)))[:-1])
    ours.close()
    assert channel.receive() is None


def test_a_close_in_the_middle_of_a_header_ends_the_channel(
    pair: tuple[socket.socket, Channel],
) -> None:
    ours, channel = pair
    ours.sendall(b"\x00\x00")
    ours.close()
    assert channel.receive() is None
