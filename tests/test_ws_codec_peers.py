"""cno._ws.Codec against real peers, both directions: frames built by wsproto's
FrameProtocol and by websockets' sans-I/O Protocol are parsed by cno, and cno's frames by
them, as client and as server, with and without permessage-deflate (and its parameters)."""
import os

import pytest

from cno._ws import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Codec

websockets_protocol = pytest.importorskip("websockets.protocol")
websockets_frames = pytest.importorskip("websockets.frames")
ws_pmd = pytest.importorskip("websockets.extensions.permessage_deflate")
wsproto_frames = pytest.importorskip("wsproto.frame_protocol")
wsproto_ext = pytest.importorskip("wsproto.extensions")

# permessage-deflate parameters as agreed in a handshake (None: not negotiated).
DEFLATE = {
    "off": None,
    "default": dict(),
    "no-context": dict(server_no_context_takeover=True, client_no_context_takeover=True),
    "server-no-context": dict(server_no_context_takeover=True),
    "client-no-context": dict(client_no_context_takeover=True),
    "window-bits": dict(server_max_window_bits=10, client_max_window_bits=12),
    "window-bits-9": dict(server_max_window_bits=9, client_max_window_bits=9),   # (neither peer takes 8)
}

TEXT = "Hello, wörld! 👋 " * 3
BINARY = os.urandom(70_000)
# (kind, payload, fin) steps; a message ends with fin=True.
SCRIPT = [
    ("text", "Hello", True),
    ("text", TEXT, True),
    ("binary", b"", True),
    ("binary", b"\x00" * 125, True),
    ("binary", b"\x01" * 126, True),
    ("binary", BINARY, True),
    ("text", "Hello", True),          # again: context takeover matters here
    ("text", "frag-", False),
    ("ping", b"in the middle", None),
    ("text", "ment", False),
    ("text", "ed é", True),
    ("binary", b"ab", False),
    ("binary", b"cd", True),
    ("pong", b"", None),
]
EXPECTED = [
    (OP_TEXT, "Hello"), (OP_TEXT, TEXT), (OP_BINARY, b""), (OP_BINARY, b"\x00" * 125),
    (OP_BINARY, b"\x01" * 126), (OP_BINARY, BINARY), (OP_TEXT, "Hello"),
    (OP_PING, b"in the middle"), (OP_TEXT, "frag-mented é"), (OP_BINARY, b"abcd"),
    (OP_PONG, b""),
]

# wsproto 1.3 loses track of a compressed fragmented message when a control frame comes
# between its fragments (test_wsproto_defect): the same script with the ping moved after.
NO_PING_INSIDE = (
    SCRIPT[:8] + SCRIPT[9:11] + [SCRIPT[8]] + SCRIPT[11:],
    EXPECTED[:7] + [EXPECTED[8], EXPECTED[7]] + EXPECTED[9:],
)


def cno_codec(client, deflate):
    return Codec(client, deflate=deflate is not None, **(deflate or {}))


# ----------------------------------------------------------------------------------------
# Adapters: send a script step as bytes, and turn received bytes into whole messages.

class Websockets:
    name = "websockets"

    def __init__(self, client, deflate):
        side = websockets_protocol.Side.CLIENT if client else websockets_protocol.Side.SERVER
        self.p = websockets_protocol.Protocol(side, max_size=None)
        if deflate is not None:
            d = dict(dict(server_no_context_takeover=False, client_no_context_takeover=False,
                          server_max_window_bits=15, client_max_window_bits=15), **deflate)
            me, peer = ("client", "server") if client else ("server", "client")
            self.p.extensions = [ws_pmd.PerMessageDeflate(
                remote_no_context_takeover=d[peer + "_no_context_takeover"],
                local_no_context_takeover=d[me + "_no_context_takeover"],
                remote_max_window_bits=d[peer + "_max_window_bits"],
                local_max_window_bits=d[me + "_max_window_bits"])]
        self.started = False
        self.parts = []
        self.kind = None

    def send(self, kind, payload, fin):
        p = self.p
        if kind == "ping":
            p.send_ping(payload)
        elif kind == "pong":
            p.send_pong(payload)
        elif kind == "close":
            p.send_close(*payload)
        else:
            data = payload.encode() if kind == "text" else payload
            if self.started:
                p.send_continuation(data, fin)
            elif kind == "text":
                p.send_text(data, fin)
            else:
                p.send_binary(data, fin)
            self.started = not fin
        return b"".join(p.data_to_send())

    def receive(self, data):
        self.p.receive_data(data)
        out = []
        for f in self.p.events_received():
            op = f.opcode.value
            if op in (OP_PING, OP_PONG):
                out.append((op, bytes(f.data)))
            elif op == OP_CLOSE:
                close = websockets_frames.Close.parse(f.data)
                out.append((OP_CLOSE, (close.code, close.reason)))
            else:
                if op != 0:
                    self.kind = op
                self.parts.append(bytes(f.data))
                if f.fin:
                    data = b"".join(self.parts)
                    self.parts = []
                    out.append((self.kind, data.decode() if self.kind == OP_TEXT else data))
        return out


class Wsproto:
    name = "wsproto"

    def __init__(self, client, deflate):
        exts = []
        if deflate is not None:
            ext = wsproto_ext.PerMessageDeflate(**deflate)
            ext.finalize("permessage-deflate")   # as after a handshake: enabled
            exts.append(ext)
        self.p = wsproto_frames.FrameProtocol(client, exts)
        self.started = False
        self.parts = []
        self.kind = None

    def send(self, kind, payload, fin):
        p = self.p
        if kind == "ping":
            return p.ping(payload)
        if kind == "pong":
            return p.pong(payload)
        if kind == "close":
            return p.close(*payload)
        self.started = not fin
        return p.send_data(payload, fin)

    def receive(self, data):
        self.p.receive_bytes(data)
        out = []
        for f in self.p.received_frames():
            op = f.opcode.value
            if op in (OP_PING, OP_PONG):
                out.append((op, bytes(f.payload)))
            elif op == OP_CLOSE:
                out.append((OP_CLOSE, (int(f.payload[0]), f.payload[1])))
            else:
                if op != 0:
                    self.kind = op
                self.parts.append(f.payload)
                if f.message_finished:
                    parts, self.parts = self.parts, []
                    out.append((self.kind, "".join(parts) if self.kind == OP_TEXT
                                else b"".join(parts)))
        return out


PEERS = [Websockets, Wsproto]


def cno_send(codec, kind, payload, fin):
    if kind == "ping":
        return codec.ping(payload)
    if kind == "pong":
        return codec.pong(payload)
    if kind == "close":
        return codec.close(*payload)
    return codec.message(payload, fin)


@pytest.mark.parametrize("deflate", list(DEFLATE), ids=list(DEFLATE))
@pytest.mark.parametrize("peer_is_client", [True, False], ids=["peer-client", "peer-server"])
@pytest.mark.parametrize("Peer", PEERS, ids=[p.name for p in PEERS])
class TestPeers:
    def test_peer_to_cno(self, Peer, peer_is_client, deflate):
        peer = Peer(peer_is_client, DEFLATE[deflate])
        cno = cno_codec(not peer_is_client, DEFLATE[deflate])
        wire = b"".join(peer.send(*step) for step in SCRIPT)
        if DEFLATE[deflate] is not None:
            assert any(b & 0x40 for b in (wire[0],)), "the peer did not compress"
        assert cno.feed(wire) == EXPECTED
        # Again, one byte at a time on a fresh pair (context takeover over many feeds).
        peer = Peer(peer_is_client, DEFLATE[deflate])
        cno = cno_codec(not peer_is_client, DEFLATE[deflate])
        wire = b"".join(peer.send(*step) for step in SCRIPT)
        got = []
        for i in range(0, len(wire), 997):
            got += cno.feed(wire[i:i + 997])
        assert got == EXPECTED

    def test_cno_to_peer(self, Peer, peer_is_client, deflate):
        peer = Peer(peer_is_client, DEFLATE[deflate])
        cno = cno_codec(not peer_is_client, DEFLATE[deflate])
        script, expected = SCRIPT, EXPECTED
        if Peer is Wsproto and DEFLATE[deflate] is not None:
            script, expected = NO_PING_INSIDE   # see test_wsproto_defect below
        got = []
        for step in script:
            got += peer.receive(cno_send(cno, *step))
        assert got == expected

    def test_close_both_ways(self, Peer, peer_is_client, deflate):
        peer = Peer(peer_is_client, DEFLATE[deflate])
        cno = cno_codec(not peer_is_client, DEFLATE[deflate])
        assert cno.feed(peer.send("close", (1001, "bye é"), None)) == [
            (OP_CLOSE, (1001, "bye é"))]
        peer = Peer(peer_is_client, DEFLATE[deflate])
        cno = cno_codec(not peer_is_client, DEFLATE[deflate])
        assert peer.receive(cno.close(4001, "app")) == [(OP_CLOSE, (4001, "app"))]


def test_websockets_frame_serialize_parsed_by_cno():
    """websockets' low-level Frame.serialize (the API its benchmark path uses)."""
    Frame, Opcode = websockets_frames.Frame, websockets_frames.Opcode
    for n in (0, 5, 125, 126, 65535, 65536):
        data = os.urandom(n)
        wire = Frame(Opcode.BINARY, data).serialize(mask=True)
        assert Codec(False).feed(wire) == [(OP_BINARY, data)]
        wire = Frame(Opcode.TEXT, b"x" * n).serialize(mask=False)
        assert Codec(True).feed(wire) == [(OP_TEXT, "x" * n)]


@pytest.mark.xfail(strict=True, reason="wsproto 1.3: a control frame between the fragments "
                   "of a compressed message resets its inbound compression state")
def test_wsproto_defect():
    """Why wsproto gets NO_PING_INSIDE when compression is on: it fails on websockets'
    frames too, so this is wsproto's, not cno's. If it passes, wsproto was fixed: drop
    NO_PING_INSIDE."""
    peer, sender = Wsproto(True, {}), Websockets(False, {})
    got = []
    for step in SCRIPT:
        got += peer.receive(sender.send(*step))
    assert got == EXPECTED
