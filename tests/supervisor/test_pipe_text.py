"""The pipe decoder keeps the text that is not a message (a faulthandler dump written on the
pipe in JSON log mode), whole, split anywhere, and bounded."""

from __future__ import annotations

import pytest

from forkloop.supervisor import heartbeat

DUMP = (
    b"Fatal Python error: Aborted\n\n"
    b"Current thread 0x00007f (most recent call first):\n"
    b'  File "/srv/app.py", line 12 in block\n'
)
STREAM = heartbeat.encode("beat", requests=1) + DUMP + heartbeat.encode("beat", requests=2)


@pytest.mark.parametrize("step", [len(STREAM), 1, 7])
def test_text_between_messages_is_kept_and_messages_still_decode(step: int) -> None:
    decoder = heartbeat.Decoder()
    messages = []
    for start in range(0, len(STREAM), step):
        messages += decoder.feed(STREAM[start : start + step])
    assert [m.get_int("requests") for m in messages] == [1, 2]
    assert decoder.text() == DUMP.decode().rstrip("\n")
    assert decoder.text() == ""  # taken once


def test_an_unterminated_last_line_is_text_too() -> None:
    decoder = heartbeat.Decoder()
    decoder.feed(b"Thread 0x1 (most recent call first):\n  File")
    assert decoder.text() == "Thread 0x1 (most recent call first):\n  File"


def test_kept_text_is_bounded() -> None:
    decoder = heartbeat.Decoder()
    line = b"x" * 1000 + b"\n"
    for _ in range(1000):
        decoder.feed(line)
    text = decoder.text()
    assert heartbeat.MAX_TEXT_BYTES // 2 < len(text) <= heartbeat.MAX_TEXT_BYTES
