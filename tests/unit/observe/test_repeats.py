"""``Repeats``: a warning or error repeated many times is written once with a count."""

from __future__ import annotations

import logging

from triggerfish.observe.logs import Repeats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def logger_with(repeats: Repeats, lines: list[str]) -> logging.Logger:
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(repeats)
    log = logging.getLogger(f"tests.repeats.{id(lines)}")
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.DEBUG)
    return log


def test_a_repeated_error_is_written_once_then_with_its_count() -> None:
    clock, lines = Clock(), list[str]()
    log = logger_with(Repeats(window=10.0, clock=clock), lines)
    for n in range(80):
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            log.exception("publishing to %r failed", f"topic-{n}")
        clock.now += 0.1  # 80 in 8 s
    assert lines == ["publishing to 'topic-0' failed"]
    clock.now += 5
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        log.exception("publishing to %r failed", "topic-80")
    assert lines[1] == "publishing to 'topic-80' failed (repeated 79 times in the last 10 s)"


def test_other_messages_and_info_lines_pass() -> None:
    clock, lines = Clock(), list[str]()
    log = logger_with(Repeats(window=10.0, clock=clock), lines)
    log.warning("the bus is away")
    log.warning("the store is away")
    log.warning("the bus is away")
    log.info("started")
    log.info("started")
    assert lines == ["the bus is away", "the store is away", "started", "started"]
