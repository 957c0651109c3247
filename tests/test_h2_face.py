"""cno.h2 end to end, without h2's own suite: cno.h2 client and server talking to each
other and to the real h2 package, both ways (tools/dropin_suites.py runs h2's suite)."""
import pytest

import cno.h2.config
import cno.h2.connection
import cno.h2.events as ev
import cno.h2.exceptions
import cno.h2.settings

h2conn = pytest.importorskip("h2.connection")
import h2.config  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402

REQUEST = [(b":method", b"GET"), (b":path", b"/x"), (b":scheme", b"https"),
           (b":authority", b"example.com"), (b"user-agent", b"t/1")]
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain")]


def cno_pair():
    client = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=True))
    server = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=False))
    return client, server


def real(client_side):
    return h2conn.H2Connection(h2.config.H2Configuration(client_side=client_side))


def shuttle(a, b):
    """Move bytes both ways until quiet; the events each side saw."""
    seen_a, seen_b = [], []
    while True:
        x = a.data_to_send()
        if x:
            seen_b += b.receive_data(x)
        y = b.data_to_send()
        if y:
            seen_a += a.receive_data(y)
        if not x and not y:
            return seen_a, seen_b


def names(events):
    return [type(e).__name__ for e in events]


@pytest.mark.parametrize("peer", ["cno", "h2-server", "h2-client"])
def test_request_response_with_body_and_trailers(peer):
    if peer == "cno":
        client, server = cno_pair()
    elif peer == "h2-server":
        client = cno.h2.connection.H2Connection()
        server = real(False)
    else:
        client = real(True)
        server = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    shuttle(client, server)
    client.send_headers(1, REQUEST, end_stream=True)
    _, at_server = shuttle(client, server)
    assert names(at_server) == ["RequestReceived", "StreamEnded"]
    request = at_server[0]
    assert request.stream_id == 1 and list(request.headers) == REQUEST
    assert request.stream_ended is at_server[1]
    server.send_headers(1, RESPONSE)
    server.send_data(1, b"hello", end_stream=False)
    server.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    at_client, _ = shuttle(client, server)
    assert names(at_client) == ["ResponseReceived", "DataReceived", "TrailersReceived",
                                "StreamEnded"]
    assert list(at_client[0].headers) == RESPONSE
    assert at_client[1].data == b"hello" and at_client[1].flow_controlled_length == 5
    assert at_client[2].stream_ended is at_client[3]


def test_flow_control_acknowledge_opens_windows():
    client, server = cno_pair()
    client.initiate_connection()
    server.initiate_connection()
    shuttle(client, server)
    client.send_headers(1, REQUEST)
    shuttle(client, server)
    client.send_data(1, b"x" * 16384)
    client.send_data(1, b"x" * 16384)
    _, got = shuttle(client, server)
    assert sum(e.flow_controlled_length for e in got if isinstance(e, ev.DataReceived)) == 32768
    assert client.local_flow_control_window(1) == 65535 - 32768
    # Nothing is given back until the application says the data was processed.
    assert server.remote_flow_control_window(1) == 65535 - 32768
    server.acknowledge_received_data(32768, 1)
    at_client, _ = shuttle(client, server)
    assert sorted((e.stream_id, e.delta) for e in at_client) == [(0, 32768), (1, 32768)]
    assert client.local_flow_control_window(1) == 65535


@pytest.mark.parametrize("increment", [0, 1 << 24])
def test_acknowledge_after_growing_a_stream_window(increment):
    """httpcore grows each stream's receive window at once (increment_flow_control_window
    2**24) and acknowledges as data arrives: the window policy must see the larger
    window (it computed a negative increment, and the engine refused it)."""
    client, server = cno_pair()
    client.initiate_connection()
    server.initiate_connection()
    shuttle(client, server)
    client.send_headers(1, REQUEST, end_stream=True)
    if increment:
        client.increment_flow_control_window(increment, stream_id=1)
    shuttle(client, server)
    server.send_headers(1, RESPONSE)
    received = 0
    for _ in range(6):   # 96 KiB: past the 64 KiB a stream starts with
        server.send_data(1, b"x" * 16384)
        at_client, _ = shuttle(client, server)
        for e in at_client:
            if isinstance(e, ev.DataReceived):
                client.acknowledge_received_data(e.flow_controlled_length, 1)
                received += e.flow_controlled_length
    shuttle(client, server)
    assert received == 6 * 16384
    assert client.remote_flow_control_window(1) > 0 and server.local_flow_control_window(1) > 0


def test_padding_counts_against_flow_control():
    client, server = cno_pair()
    client.initiate_connection()
    server.initiate_connection()
    shuttle(client, server)
    client.send_headers(1, REQUEST)
    client.send_data(1, b"abc", pad_length=10, end_stream=True)
    _, got = shuttle(client, server)
    data = [e for e in got if isinstance(e, ev.DataReceived)][0]
    assert data.data == b"abc" and data.flow_controlled_length == 14


def test_ping_settings_goaway_events():
    client, server = cno_pair()
    client.initiate_connection()
    server.initiate_connection()
    at_client, at_server = shuttle(client, server)
    assert "RemoteSettingsChanged" in names(at_client)
    assert "SettingsAcknowledged" in names(at_server)
    client.ping(b"12345678")
    at_client, at_server = shuttle(client, server)
    assert names(at_server) == ["PingReceived"] and at_server[0].ping_data == b"12345678"
    assert names(at_client) == ["PingAckReceived"]
    server.update_settings({cno.h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 7})
    at_client, at_server = shuttle(client, server)
    changed = at_client[0].changed_settings[cno.h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS]
    assert changed.new_value == 7 and server.local_settings.max_concurrent_streams == 7
    server.close_connection(error_code=0, additional_data=b"bye")
    at_client, _ = shuttle(client, server)
    assert names(at_client) == ["ConnectionTerminated"]
    assert at_client[0].additional_data == b"bye"


def test_misuse_raises_h2_exceptions():
    client, server = cno_pair()
    client.initiate_connection()
    client.send_headers(3, REQUEST)
    with pytest.raises(cno.h2.exceptions.StreamIDTooLowError):
        client.send_headers(1, REQUEST)
    with pytest.raises(cno.h2.exceptions.NoSuchStreamError):
        client.end_stream(5)
    with pytest.raises(cno.h2.exceptions.FlowControlError):
        client.send_data(3, b"x" * 70000)
    client.end_stream(3)
    with pytest.raises(cno.h2.exceptions.StreamClosedError):
        client.send_data(3, b"late")
    with pytest.raises(ValueError):
        client.ping(b"short")


def test_peer_protocol_error_is_raised_with_goaway():
    server = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    server.receive_data(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    server.clear_outbound_data_buffer()
    # DATA on stream 0 (RFC 9113 6.1)
    with pytest.raises(cno.h2.exceptions.ProtocolError):
        server.receive_data(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
    out = server.data_to_send()
    assert out[3] == 0x7 and out[-4:] == b"\x00\x00\x00\x01"   # GOAWAY PROTOCOL_ERROR


def test_server_push_to_real_client():
    client = real(True)
    server = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    shuttle(client, server)
    client.send_headers(1, REQUEST, end_stream=True)
    shuttle(client, server)
    server.push_stream(1, 2, [(b":method", b"GET"), (b":path", b"/style.css"),
                              (b":scheme", b"https"), (b":authority", b"example.com")])
    server.send_headers(2, RESPONSE, end_stream=True)
    server.send_headers(1, RESPONSE, end_stream=True)
    at_client, _ = shuttle(client, server)
    kinds = [type(e) for e in at_client]
    assert h2.events.PushedStreamReceived in kinds
    pushed = [e for e in at_client if isinstance(e, h2.events.PushedStreamReceived)][0]
    assert pushed.pushed_stream_id == 2 and pushed.parent_stream_id == 1


def test_upgrade_h2c_between_faces():
    client, server = cno_pair()
    settings = client.initiate_upgrade_connection()
    server.initiate_upgrade_connection(settings)
    assert server.remote_settings.enable_push == 1
    server.send_headers(1, RESPONSE, end_stream=True)
    at_client, _ = shuttle(client, server)
    assert "ResponseReceived" in names(at_client) and "StreamEnded" in names(at_client)


from hypothesis import given, settings, strategies as st  # noqa: E402

import h2.utilities  # noqa: E402
from cno.h2.connection import _PUSH, _REQUEST, _RESPONSE, _TRAILERS, _usual  # noqa: E402

_NAMES = st.sampled_from([b":method", b":path", b":scheme", b":authority", b":status",
                          b":protocol", b"x-a", b"X-B", b"host", b"te", b"cookie",
                          b"connection", b"accept", b"x y", b" z", b"-", b"authorization"])
_VALUES = st.sampled_from([b"GET", b"CONNECT", b"/", b"", b"https", b"example.com", b"200",
                           b" pad", b"v ", b"trailers", b"a=b", b"x",
                           b"session=0123456789abcdef; theme=dark"])


_HEADS = st.sampled_from([
    [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"), (b":authority", b"a")],
    [(b":authority", b"a"), (b":method", b"CONNECT")], [(b":status", b"200")], [],
    [(b":method", b"GET"), (b":path", b""), (b":scheme", b"https"), (b":authority", b"a")]])
_BYTES_FIELDS = st.one_of(st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
                    st.builds(lambda head, rest: head + rest, _HEADS,
                              st.lists(st.tuples(_NAMES, _VALUES), max_size=5)))
_STR_FIELDS = _BYTES_FIELDS.map(lambda fields: [(n.decode("latin-1"), v.decode("latin-1"))
                                                  for n, v in fields])
# bytes or str lists (h2 sends str UTF-8 encoded), and a few non-ASCII str fields
_FIELDS = st.one_of(_BYTES_FIELDS, _STR_FIELDS, st.builds(
    lambda head, rest: head + rest, _STR_FIELDS,
    st.lists(st.tuples(st.sampled_from(["x-\u00e9", "X-\u00c9", "x-a"]),
                       st.sampled_from(["\u00e9t\u00e9", " \u00a0", "\u00a0v"])), max_size=3)))
_taken = []


@settings(max_examples=600, deadline=None)
@given(fields=_FIELDS, kind=st.sampled_from([_REQUEST, _RESPONSE, _TRAILERS, _PUSH]),
       split=st.booleans())
def test_usual_header_lists_are_what_h2s_rules_leave_alone(fields, kind, split):
    """The face's fast path (_usual) only takes lists that h2's own outbound rules (the
    real h2 package's utilities) accept and return unchanged."""
    if not _usual(fields, kind, split):
        return
    _taken.append(kind)
    flags = h2.utilities.HeaderValidationFlags(
        is_client=kind == _REQUEST, is_trailer=kind == _TRAILERS,
        is_response_header=kind == _RESPONSE, is_push_promise=kind == _PUSH)
    encoded = h2.utilities.utf8_encode_headers(fields)
    out = list(h2.utilities.validate_outbound_headers(
        h2.utilities.normalize_outbound_headers(encoded, flags, split), flags))
    assert out == encoded
    assert all(type(h) is tuple or getattr(h, "indexable", True) for h in out)


def test_usual_fast_path_was_exercised():
    """(the property above saw lists of every kind that take the fast path)"""
    for _ in range(3):
        if set(_taken) >= {_REQUEST, _RESPONSE, _TRAILERS, _PUSH}:
            break
        test_usual_header_lists_are_what_h2s_rules_leave_alone()
    assert set(_taken) >= {_REQUEST, _RESPONSE, _TRAILERS, _PUSH}


@pytest.mark.parametrize("make", [cno.h2.connection.H2Connection, h2conn.H2Connection])
def test_invalid_client_preface_queues_nothing(make):
    # As h2: the preface is checked before anything that would end the connection, so
    # no GOAWAY is queued (RFC 9113 3.4 lets it be omitted); the caller closes.
    server = make(type(make().config)(client_side=False))
    server.initiate_connection()
    server.data_to_send()
    with pytest.raises(Exception) as info:
        server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert type(info.value).__name__ == "ProtocolError"
    assert server.data_to_send() == b""


def test_encoder_and_decoder_for_inspection():
    client, server = cno_pair()
    client.initiate_connection()
    server.initiate_connection()
    assert server.encoder.header_table_size == server.decoder.header_table_size == 4096
    client.update_settings({cno.h2.settings.SettingCodes.HEADER_TABLE_SIZE: 80})
    shuttle(client, server)
    # The peer's SETTINGS size the encoder's table; our own changes leave the decoder's
    # at what the peer's encoder chose (no size update came).
    assert server.encoder.header_table_size == 80
    assert client.decoder.header_table_size == 4096
    with pytest.raises(AttributeError):
        server._engine.encoder = None   # (the engine's: read-only)
# ---------------------------------------------------------------------------------------
# Received header fields are of the classes h2 hands out (hpack's HeaderTuple and
# NeverIndexedHeaderTuple; cookies joined into a never-indexed field at the end)

import hpack  # noqa: E402

COOKIE_REQUEST = REQUEST + [(b"cookie", b"a=1"), hpack.NeverIndexedHeaderTuple(b"x-token", b"t"),
                            (b"cookie", b"b=2"), (b"accept", b"*/*")]


def header_events(events):
    """(event type name, its header fields with their classes) for each event with headers."""
    return [(type(e).__name__, [(h, type(h)) for h in e.headers])
            for e in events if getattr(e, "headers", None) is not None]


def same_as_h2(client_side, wire, **config):
    """Feed the same bytes to cno.h2 and to h2 in the same role: the header fields of the
    events, classes included, must be the same."""
    seen = []
    for make in (cno.h2.connection.H2Connection, h2conn.H2Connection):
        cfg_class = cno.h2.config.H2Configuration if make is not h2conn.H2Connection \
            else h2.config.H2Configuration
        c = make(cfg_class(client_side=client_side, **config))
        c.initiate_connection()
        if client_side:
            c.send_headers(1, REQUEST, end_stream=True)
        events = []
        for chunk in wire:
            events += c.receive_data(chunk)
        seen.append(header_events(events))
    assert seen[0] == seen[1]
    return seen[0]


@pytest.mark.parametrize("encoding", [None, "utf-8"])
@pytest.mark.parametrize("normalize", [True, False])
def test_received_request_and_trailers_have_h2s_classes(encoding, normalize):
    client = real(True)
    client.initiate_connection()
    wire = [client.data_to_send()]
    for sid in (1, 3):   # the second request mostly indexed (the dynamic table)
        client.send_headers(sid, COOKIE_REQUEST)
        client.send_headers(sid, [(b"x-trailer", b"1"), (b"cookie", b"c=3"),
                                  hpack.NeverIndexedHeaderTuple(b"x-sig", b"s")],
                            end_stream=True)
        wire.append(client.data_to_send())
    seen = same_as_h2(False, wire, header_encoding=encoding, normalize_inbound_headers=normalize)
    kinds = {cls for _, fields in seen for _, cls in fields}
    assert kinds == {hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple}
    request = seen[2][1]
    assert request[-1][1] is (hpack.NeverIndexedHeaderTuple if normalize else hpack.HeaderTuple)
    cookie = "cookie" if encoding else b"cookie"
    assert [h for h, _ in request if h[0] == cookie] == (
        [(cookie, "a=1; b=2" if encoding else b"a=1; b=2")] if normalize else
        [(cookie, "a=1" if encoding else b"a=1"), (cookie, "b=2" if encoding else b"b=2")])


@pytest.mark.parametrize("encoding", [None, "utf-8"])
def test_received_response_push_and_informational_have_h2s_classes(encoding):
    client, server = real(True), real(False)
    client.initiate_connection()
    server.initiate_connection()
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive_data(client.data_to_send())
    wire = [server.data_to_send()]
    server.send_headers(1, [(b":status", b"103"), (b"link", b"</s.css>; rel=preload")])
    server.push_stream(1, 2, REQUEST[:4] + [(b"cookie", b"p=1"), (b"cookie", b"q=2"),
                                            hpack.NeverIndexedHeaderTuple(b"x-push", b"1")])
    server.send_headers(1, RESPONSE + [hpack.NeverIndexedHeaderTuple(b"set-cookie", b"s=1")])
    server.send_data(1, b"body")
    server.send_headers(1, [(b"x-trailer", b"done")], end_stream=True)
    wire.append(server.data_to_send())
    seen = same_as_h2(True, wire, header_encoding=encoding)
    assert [name for name, _ in seen] == ["InformationalResponseReceived", "PushedStreamReceived",
                                          "ResponseReceived", "TrailersReceived"]
    assert {cls for _, fields in seen for _, cls in fields} == {
        hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple}


def test_header_classes_without_hpack():
    """Without the hpack package, cno.h2 hands out cno.hpack's classes (chosen at import)."""
    import subprocess
    import sys
    code = """if True:
        import sys
        sys.modules["hpack"] = sys.modules["hpack.struct"] = None   # (not importable)
        import cno.h2.config, cno.h2.connection, cno.hpack
        c = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=True))
        s = cno.h2.connection.H2Connection(cno.h2.config.H2Configuration(client_side=False))
        c.initiate_connection(); s.initiate_connection()
        c.send_headers(1, [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"),
                           (b":authority", b"a"), (b"cookie", b"x=1"),
                           cno.hpack.NeverIndexedHeaderTuple(b"x-s", b"v")], end_stream=True)
        [req] = [e for e in s.receive_data(c.data_to_send()) if hasattr(e, "headers")]
        print(sorted({type(h).__module__ + "." + type(h).__name__ for h in req.headers}))
        print(type(req.headers[-1]).__name__, type(req.headers[-2]).__name__)
        assert "hpack" not in sys.modules or sys.modules["hpack"] is None
    """
    import os
    here = os.path.dirname(os.path.dirname(os.path.abspath(cno.h2.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=os.path.dirname(here)),
                         ).stdout.split("\n")
    assert out[0] == "['cno._hpack.HeaderTuple', 'cno._hpack.NeverIndexedHeaderTuple']"
    assert out[1] == "NeverIndexedHeaderTuple NeverIndexedHeaderTuple"   # cookie; x-s


@pytest.mark.parametrize("fields", [
    [], REQUEST, REQUEST + [(b"cookie", b"a=1")], [(b"cookie", b"a=1")] + REQUEST,
    [hpack.HeaderTuple(b"cookie", b"a=1"), hpack.HeaderTuple(b"x", b"1"),
     hpack.NeverIndexedHeaderTuple(b"cookie", b"b=2"), (b"cookie", b"c=3")],
])
def test_normalize_inbound_headers_as_h2(fields):
    import cno.h2.utilities
    ours = cno.h2.utilities.normalize_inbound_headers(iter(fields), None)
    theirs = list(h2.utilities.normalize_inbound_headers(fields, None))
    assert [(h, type(h)) for h in ours] == [(h, type(h)) for h in theirs]
    assert cno.h2.utilities.normalize_inbound_headers(fields, None) is not fields


@pytest.mark.parametrize("extra, ok", [
    ([], True), ([(b"host", b"example.com")], True), ([(b"host", b"other")], False),
    ([(b"host", b"example.com"), (b"host", b"example.com")], False),
])
@pytest.mark.parametrize("with_authority", [True, False])
def test_validate_request_authority(extra, ok, with_authority):
    import cno.h2.utilities
    fields = [hpack.HeaderTuple(*f) for f in REQUEST if with_authority or f[0] != b":authority"]
    fields += extra
    if not with_authority and not extra:
        ok = False
    elif not with_authority and extra == [(b"host", b"other")]:
        ok = True   # (only a Host: nothing to differ from)
    if ok:
        cno.h2.utilities.validate_request_authority(fields)
    else:
        with pytest.raises(cno.h2.exceptions.ProtocolError):
            cno.h2.utilities.validate_request_authority(iter(fields))


@pytest.mark.parametrize("frame", [
    b"\x00\x00\x01\x00\x00\x00\x00\x00\x09x",              # DATA on idle stream 9
    b"\x00\x00\x04\x08\x00\x00\x00\x00\x0b\x00\x00\x00\x01",  # WINDOW_UPDATE on idle stream 11
], ids=["data", "window-update"])
def test_frame_on_an_idle_stream_is_no_such_stream(frame):
    # As h2: the frame's stream is looked up and not found (RFC 9113 5.1: a connection
    # error PROTOCOL_ERROR), NoSuchStreamError with its id; the same GOAWAY goes out.
    import hpack
    block = hpack.Encoder().encode(REQUEST)
    preface = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
               + len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block)
    outs = []
    for make, exc in ((cno.h2.connection.H2Connection, cno.h2.exceptions.NoSuchStreamError),
                      (h2conn.H2Connection, h2.exceptions.NoSuchStreamError)):
        server = make(type(make().config)(client_side=False))
        server.initiate_connection()
        server.receive_data(preface)
        server.data_to_send()
        with pytest.raises(exc) as info:
            server.receive_data(frame)
        assert info.value.stream_id == frame[8]
        outs.append(server.data_to_send())
    assert outs[0] == outs[1]
