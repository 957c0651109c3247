"""Fuzz cno._ws.Codec (the WebSocket codec): any bytes parse to events or raise
WebSocketError (never anything else), and stay failed after it; how the bytes are cut
into feed() calls changes nothing (the same events, those carried by the error
included, and the same close code); the data
messages parsed, sent again by a codec of the sender's role with the same settings,
parse back to themselves.

Input: options (1 byte: bit 0 the receiver is a client, bit 1 permessage-deflate agreed,
bit 2 both sides without context takeover, bits 3-4 the window bits 15, 12, 9, 8), the
feed() cutting mode (1 byte, harness.chunks), then the bytes received.

    python fuzz/fuzz_ws.py fuzz/corpus/fuzz_ws -max_len=4096
"""
import harness
from cno._ws import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Codec
from cno.errors import WebSocketError

BITS = (15, 12, 9, 8)


def codec(client, options):
    deflate = {}
    if options & 2:
        bits = BITS[(options >> 3) & 3]
        deflate = dict(deflate=True, server_no_context_takeover=bool(options & 4),
                       client_no_context_takeover=bool(options & 4),
                       server_max_window_bits=bits, client_max_window_bits=bits)
    return Codec(client, max_message_size=1 << 16, **deflate)


def parse(options, data, mode):
    """(events, close code of the error or None)."""
    receiver = codec(bool(options & 1), options)
    events = []
    for piece in harness.chunks(data, mode):
        try:
            events += receiver.feed(piece)
        except WebSocketError as e:
            events += e.events
            try:
                receiver.feed(b"\x81\x80\x00\x00\x00\x00")
            except WebSocketError as again:
                if again.code != e.code:
                    raise harness.Finding("failed with %d, then %d" % (e.code, again.code))
            else:
                raise harness.Finding("feed() after a failure did not raise")
            return events, e.code
    return events, None


def one_input(data):
    if len(data) < 2:
        return
    options, mode, data = data[0], data[1], data[2:]
    events, failure = parse(options, data, mode)
    for op, value in events:
        expected = {OP_TEXT: str, OP_BINARY: bytes, OP_PING: bytes, OP_PONG: bytes,
                    OP_CLOSE: tuple}.get(op)
        if expected is None or type(value) is not expected:
            raise harness.Finding("event %r" % ((op, value),))
    if (events, failure) != parse(options, data, 0):
        raise harness.Finding("cutting the input into pieces changed what it parsed to")
    messages = [(op, value) for op, value in events if op in (OP_TEXT, OP_BINARY)]
    if messages:
        sender, receiver = codec(not options & 1, options), codec(bool(options & 1), options)
        wire = b"".join(sender.message(value) for _, value in messages)
        again = [e for e in receiver.feed(wire)]
        if again != messages:
            raise harness.Finding("messages did not survive a round trip")


if __name__ == "__main__":
    harness.main(one_input)
