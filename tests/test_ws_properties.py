"""Property tests (hypothesis) for cno._ws.Codec: any split of the input gives the same
events, and whatever one codec sends the other reads back, in both directions, with and
without permessage-deflate."""
from hypothesis import given, settings, strategies as st

from cno._ws import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, Codec
from cno.errors import WebSocketError

SETTINGS = settings(max_examples=150, deadline=None)

texts = st.text(max_size=300)
blobs = st.binary(max_size=300) | st.sampled_from([b"\x00" * 70_000, bytes(range(256)) * 300])
# A message: its pieces (one per frame) and the pings sent between them.
messages = st.one_of(
    st.tuples(st.just("text"), st.lists(texts, min_size=1, max_size=4)),
    st.tuples(st.just("binary"), st.lists(blobs, min_size=1, max_size=4)),
)
pings = st.lists(st.binary(max_size=125), max_size=2)
conversations = st.lists(st.tuples(messages, pings), max_size=6)
deflates = st.one_of(st.none(), st.fixed_dictionaries({
    "server_no_context_takeover": st.booleans(),
    "client_no_context_takeover": st.booleans(),
    "server_max_window_bits": st.integers(8, 15),
    "client_max_window_bits": st.integers(8, 15),
}))


def pair(client_sends, deflate):
    kw = dict(deflate=deflate is not None, **(deflate or {}))
    return Codec(client_sends, **kw), Codec(not client_sends, **kw)


def send(sender, conversation):
    """The wire for a conversation, and the events the receiver must report. Pings go
    after a message's first frame: between its fragments, or after a one-frame message."""
    wire, expected = [], []
    for (kind, pieces), ping_payloads in conversation:
        whole = (OP_TEXT, "".join(pieces)) if kind == "text" else (OP_BINARY, b"".join(pieces))
        wire.append(sender.message(pieces[0], fin=len(pieces) == 1))
        if len(pieces) == 1:
            expected.append(whole)
        wire += [sender.ping(p) for p in ping_payloads]
        expected += [(OP_PING, p) for p in ping_payloads]
        for i, piece in enumerate(pieces[1:], 2):
            wire.append(sender.message(piece, fin=i == len(pieces)))
        if len(pieces) > 1:
            expected.append(whole)
    wire.append(sender.close(1000, "done"))
    expected.append((OP_CLOSE, (1000, "done")))
    return b"".join(wire), expected


@SETTINGS
@given(conversation=conversations, client_sends=st.booleans(), deflate=deflates)
def test_round_trip(conversation, client_sends, deflate):
    sender, receiver = pair(client_sends, deflate)
    wire, expected = send(sender, conversation)
    assert receiver.feed(wire) == expected
    assert receiver.close_received and sender.close_sent


@SETTINGS
@given(conversation=conversations, client_sends=st.booleans(), deflate=deflates,
       data=st.data())
def test_any_split_gives_the_same_events(conversation, client_sends, deflate, data):
    sender, receiver = pair(client_sends, deflate)
    wire, expected = send(sender, conversation)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    got = []
    prev = 0
    for cut in cuts + [len(wire)]:
        got += receiver.feed(memoryview(wire)[prev:cut])
        prev = cut
    assert got == expected


@SETTINGS
@given(payload=st.binary(max_size=200), data=st.data())
def test_any_split_of_invalid_input_fails_alike(payload, data):
    """Arbitrary bytes: a split changes neither the events before the error nor the
    error (1002, 1007 or 1009), and the codec then stays failed."""
    def run(pieces):
        c = Codec(False, max_message_size=1000)
        got = []
        try:
            for p in pieces:
                got += c.feed(p)
        except WebSocketError as e:
            assert e.code in (1002, 1007, 1009)
            try:
                c.feed(b"\x89\x80\x00\x00\x00\x00")
            except WebSocketError as again:
                assert again.code == e.code
            else:
                raise AssertionError("a failed codec accepted input")
            return got, e.code
        return got, None
    whole = run([payload])
    cut = data.draw(st.integers(0, len(payload)))
    split = run([payload[:cut], payload[cut:]])
    # Events of the chunk that failed are not returned: compare what both saw at least.
    assert whole[1] == split[1]
    if whole[1] is None:
        assert whole[0] == split[0]


def _run_pieces(pieces, client):
    """(events, close code or None) of feeding pieces; checks that a failed codec stays
    failed with the same code."""
    c = Codec(client, max_message_size=100_000, deflate=True)
    got = []
    try:
        for p in pieces:
            got += c.feed(p)
    except WebSocketError as e:
        assert e.code in (1002, 1007, 1009)
        try:
            c.feed(b"\x89\x00" if client else b"\x89\x80\x00\x00\x00\x00")
        except WebSocketError as again:
            assert again.code == e.code
        else:
            raise AssertionError("a failed codec accepted input")
        return got, e.code
    return got, None


@SETTINGS
@given(conversation=conversations, client_sends=st.booleans(), data=st.data())
def test_corrupted_wire_fails_alike_under_any_split(conversation, client_sends, data):
    """A valid conversation (compressed) with some bytes changed: wherever it is cut, the
    codec reports the same error, or the same events when the damage went unnoticed
    (inside a binary payload)."""
    sender, _ = pair(client_sends, {})
    wire, _ = send(sender, conversation)
    wire = bytearray(wire)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    wire = bytes(wire)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    pieces = [wire[a:b] for a, b in zip([0] + cuts, cuts + [len(wire)])]
    whole = _run_pieces([wire], not client_sends)
    split = _run_pieces(pieces, not client_sends)
    assert whole[1] == split[1]
    if whole[1] is None:
        assert whole[0] == split[0]
    elif len(wire) <= 4096:
        # Events of the pieces before the failing one come out; byte by byte, every
        # event before the error does: the split run's events are a prefix of those.
        fine = _run_pieces([wire[i:i + 1] for i in range(len(wire))], not client_sends)
        assert fine[1] == whole[1]
        assert split[0] == fine[0][:len(split[0])]
