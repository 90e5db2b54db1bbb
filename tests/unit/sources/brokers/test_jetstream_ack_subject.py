"""What the JetStream source reads from a message's ack subject: the stream, the
stream sequence (the event id's second half) and how often it was delivered, in both
forms servers send; anything else is refused with the subject in the message."""

from __future__ import annotations

import pytest

from triggerfish.errors import AdapterError
from triggerfish.sources.brokers.pull import ack_metadata


def test_the_classic_form() -> None:
    reply = "$JS.ACK.orders.triggerfish_f_t.3.1042.977.1795801954718986500.12"
    assert ack_metadata(reply) == ("orders", "1042", 3)


def test_the_form_with_a_domain_and_an_account_hash() -> None:
    reply = "$JS.ACK.hub.ACCHASH.orders.triggerfish_f_t.1.7.7.1795801954718986500.0.rnd"
    assert ack_metadata(reply) == ("orders", "7", 1)


def test_a_subject_that_is_no_ack_subject_is_refused() -> None:
    with pytest.raises(AdapterError, match=r"ack subject is not one: '_INBOX.abc'"):
        ack_metadata("_INBOX.abc")
