"""cno.raw's surface as docs/raw.md describes it: constructor, flags and properties, settings,
the write_* argument rules, constants with libcno's values, errors, and how event methods are
found and called."""
import hpack
import pytest

import cno
import cno.hpack
import cno.raw as raw
from cno import errors
from raw_frames import (
    ACK, CLIENT_HEADERS, DATA, HEADERS, PING, PREFACE, PRIORITY, REQ, SETTINGS, data,
    goaway, headers, literal_block, make_client, make_server, open_stream, ping, recorder_class,
    request, settings, settings_ack,
)

SETTING_NAMES = ["header_table_size", "enable_push", "max_concurrent_streams",
                 "initial_window_size", "max_frame_size", "max_header_list_size",
                 "enable_connect_protocol", "no_rfc7540_priorities"]


# ---------------------------------------------------------------------------------------------
# Constants: libcno's names and values

LIBCNO_CONSTANTS = {
    "CNO_SERVER": 0, "CNO_CLIENT": 1, "CNO_HTTP1": 0, "CNO_HTTP2": 1,
    "CNO_REMOTE": 0, "CNO_LOCAL": 1,
    "CNO_RST_NO_ERROR": 0x0, "CNO_RST_PROTOCOL_ERROR": 0x1, "CNO_RST_INTERNAL_ERROR": 0x2,
    "CNO_RST_FLOW_CONTROL_ERROR": 0x3, "CNO_RST_SETTINGS_TIMEOUT": 0x4,
    "CNO_RST_STREAM_CLOSED": 0x5, "CNO_RST_FRAME_SIZE_ERROR": 0x6,
    "CNO_RST_REFUSED_STREAM": 0x7, "CNO_RST_CANCEL": 0x8, "CNO_RST_COMPRESSION_ERROR": 0x9,
    "CNO_RST_CONNECT_ERROR": 0xA, "CNO_RST_ENHANCE_YOUR_CALM": 0xB,
    "CNO_RST_INADEQUATE_SECURITY": 0xC, "CNO_RST_HTTP_1_1_REQUIRED": 0xD,
    "CNO_FRAME_DATA": 0x0, "CNO_FRAME_HEADERS": 0x1, "CNO_FRAME_PRIORITY": 0x2,
    "CNO_FRAME_RST_STREAM": 0x3, "CNO_FRAME_SETTINGS": 0x4, "CNO_FRAME_PUSH_PROMISE": 0x5,
    "CNO_FRAME_PING": 0x6, "CNO_FRAME_GOAWAY": 0x7, "CNO_FRAME_WINDOW_UPDATE": 0x8,
    "CNO_FRAME_CONTINUATION": 0x9, "CNO_FRAME_UNKNOWN": 0xA,
    "CNO_FLAG_ACK": 0x1, "CNO_FLAG_END_STREAM": 0x1, "CNO_FLAG_END_HEADERS": 0x4,
    "CNO_FLAG_PADDED": 0x8, "CNO_FLAG_PRIORITY": 0x20,
    "CNO_SETTINGS_HEADER_TABLE_SIZE": 1, "CNO_SETTINGS_ENABLE_PUSH": 2,
    "CNO_SETTINGS_MAX_CONCURRENT_STREAMS": 3, "CNO_SETTINGS_INITIAL_WINDOW_SIZE": 4,
    "CNO_SETTINGS_MAX_FRAME_SIZE": 5, "CNO_SETTINGS_MAX_HEADER_LIST_SIZE": 6,
    "CNO_SETTINGS_UNKNOWN": 7, "CNO_SETTINGS_ENABLE_CONNECT_PROTOCOL": 8,
    "CNO_SETTINGS_UNDEFINED": 9,
    "CNO_ERRNO_ASSERTION": 1, "CNO_ERRNO_NO_MEMORY": 2, "CNO_ERRNO_NOT_IMPLEMENTED": 3,
    "CNO_ERRNO_PROTOCOL": 4, "CNO_ERRNO_INVALID_STREAM": 6, "CNO_ERRNO_WOULD_BLOCK": 7,
    "CNO_ERRNO_DISCONNECT": 9,
}


@pytest.mark.parametrize("name", sorted(LIBCNO_CONSTANTS))
def test_constant(name):
    # docs/raw.md Constants: every libcno constant under its C name, with libcno's value.
    assert getattr(raw, name) == LIBCNO_CONSTANTS[name]
    assert type(getattr(raw, name)) is int
    assert name in raw.__all__


def test_defaults_constants():
    # docs/raw.md: limits' defaults in cno.raw.DEFAULT_*.
    assert raw.DEFAULT_MAX_CONCURRENT_STREAMS == 100
    assert raw.DEFAULT_MAX_HEADER_LIST_SIZE == 65536
    assert raw.DEFAULT_MAX_HEADER_BLOCK_SIZE == 262144
    assert raw.DEFAULT_MAX_CONTINUATIONS == 64
    assert raw.DEFAULT_RESET_BUDGET == 1000
    assert raw.DEFAULT_EMPTY_FRAME_BUDGET == 100
    assert raw.DEFAULT_CONTROL_FRAME_BUDGET == 10000


def test_error_hierarchy_and_errno():
    # docs/raw.md Errors: all under cno.CnoError, each with libcno's errno.
    assert cno.CnoError is errors.CnoError
    for cls in (errors.ProtocolError, errors.FlowControlError, errors.FrameSizeError,
                errors.EnhanceYourCalm, errors.HPACKDecodingError):
        assert issubclass(cls, errors.ProtocolError) and cls.errno == raw.CNO_ERRNO_PROTOCOL
    assert (errors.FlowControlError.error_code, errors.FrameSizeError.error_code,
            errors.EnhanceYourCalm.error_code) == (0x3, 0x6, 0xB)
    assert errors.ConnectionClosed.errno == raw.CNO_ERRNO_DISCONNECT
    assert errors.WouldBlock.errno == raw.CNO_ERRNO_WOULD_BLOCK
    assert errors.InvalidStream.errno == raw.CNO_ERRNO_INVALID_STREAM
    assert errors.UsageError.errno == raw.CNO_ERRNO_ASSERTION
    assert issubclass(errors.UsageError, ValueError)
    assert cno.hpack.HPACKDecodingError is errors.HPACKDecodingError


def test_frame_type():
    # docs/raw.md: cno.raw.Frame(type, flags, stream, payload).
    f = raw.Frame(1, 4, 3, b"xyz")
    assert (f.type, f.flags, f.stream, bytes(f.payload)) == (1, 4, 3, b"xyz")


# ---------------------------------------------------------------------------------------------
# Constructor, flags, properties

def test_server_and_client_flags():
    s = raw.Connection(server=True)
    c = raw.Connection(server=False)
    assert (s.is_server, s.is_client) == (True, False)
    assert (c.is_server, c.is_client) == (False, True)
    with pytest.raises(AttributeError):
        s.is_server = False


def test_is_http2():
    c = raw.Connection(server=True)
    assert c.is_http2 is False
    c.connection_made(True)
    assert c.is_http2 is True


def test_connection_made_twice():
    # libcno semantics: cno_begin twice is an ASSERTION error (UsageError).
    c = raw.Connection(server=True)
    c.connection_made(True)
    with pytest.raises(errors.UsageError):
        c.connection_made(True)


def test_flag_defaults():
    # docs/raw.md: manual_flow_control False; disallow_h2_upgrade True,
    # disallow_h2_prior_knowledge False.
    c = raw.Connection(server=True)
    assert c.manual_flow_control is False
    assert c.disallow_h2_upgrade is True
    assert c.disallow_h2_prior_knowledge is False
    c.manual_flow_control = True
    assert c.manual_flow_control is True


def test_next_stream_initial():
    assert raw.Connection(server=False).next_stream == 1
    s = make_server()
    assert s.next_stream == 2


def test_closed_property():
    c = make_server()
    assert c.closed is False
    c.connection_lost()
    assert c.closed is True
    with pytest.raises(AttributeError):
        c.closed = False


def test_local_settings_defaults():
    # docs/raw.md: our defaults: max_concurrent_streams=100, max_header_list_size=65536,
    # everything else the RFC's.
    c = raw.Connection(server=True)
    ls = c.local_settings
    assert set(ls) == set(SETTING_NAMES)
    assert (ls["header_table_size"], ls["max_concurrent_streams"], ls["initial_window_size"],
            ls["max_frame_size"], ls["max_header_list_size"], ls["enable_connect_protocol"]) == (
        4096, 100, 65535, 16384, 65536, 0)


def test_remote_settings_rfc_defaults_until_settings():
    # docs/raw.md: remote_settings are the RFC defaults until the peer's SETTINGS arrive.
    c = raw.Connection(server=False)
    c.connection_made(True)
    rs = c.remote_settings
    assert set(rs) == set(SETTING_NAMES)
    assert (rs["header_table_size"], rs["enable_push"], rs["initial_window_size"],
            rs["max_frame_size"], rs["enable_connect_protocol"]) == (4096, 1, 65535, 16384, 0)
    c.data_received(settings(max_frame_size=20000, enable_push=0))
    assert c.remote_settings["max_frame_size"] == 20000
    assert c.remote_settings["enable_push"] == 0


def advertised(c):
    """The values of the first SETTINGS frame a fresh connection writes."""
    c.connection_made(True)
    return dict([f for f in c.sent if f.type == SETTINGS][0].settings)


def test_client_without_on_message_push_advertises_push_0():
    # docs/raw.md: a client advertises enable_push=1 exactly when its class defines
    # on_message_push (known libcno defect: always 0).
    c = recorder_class(push=False)(server=False)
    assert advertised(c).get(2, 1) == 0
    assert c.local_settings["enable_push"] == 0


def test_client_with_on_message_push_advertises_push_1():
    c = recorder_class(push=True)(server=False)
    assert advertised(c).get(2, 1) == 1
    assert c.local_settings["enable_push"] == 1


def test_constructor_enable_push_override():
    # docs/raw.md: Connection(server=False, enable_push=0) overrides on_message_push.
    c = recorder_class(push=True)(server=False, enable_push=0)
    assert advertised(c).get(2, 1) == 0


def test_update_settings_enable_push_override():
    c = recorder_class(push=True)(server=False)
    c.update_settings(enable_push=0)
    assert advertised(c).get(2, 1) == 0


def test_advertised_defaults():
    # docs/raw.md: max_concurrent_streams=100 and max_header_list_size=65536 are sent.
    s = advertised(recorder_class()(server=True))
    assert (s.get(3), s.get(6)) == (100, 65536)


def test_update_settings_sends_changed_values():
    # docs/raw.md update_settings: a SETTINGS frame with the changed values; local_settings
    # are "the latest we sent".
    c = make_server()
    c.update_settings(max_concurrent_streams=10, initial_window_size=30000)
    [f] = c.take(SETTINGS)
    assert not f.flags & ACK
    assert dict(f.settings) == {3: 10, 4: 30000}
    assert c.local_settings["max_concurrent_streams"] == 10
    assert c.local_settings["initial_window_size"] == 30000


def test_update_settings_before_connection_made():
    # The first SETTINGS carries values changed before connection_made.
    c = recorder_class()(server=True)
    c.update_settings(max_concurrent_streams=7)
    assert advertised(c).get(3) == 7


@pytest.mark.parametrize("changes", [{"enable_push": 2}, {"max_frame_size": 100},
                                     {"max_frame_size": 2**24}, {"initial_window_size": 2**31},
                                     {"enable_connect_protocol": 2},
                                     {"max_concurrent_streams": -1}])
def test_update_settings_invalid_values(changes):
    # RFC 9113 6.5.2 ranges: a value we may not send is an API misuse.
    c = make_server()
    with pytest.raises(ValueError):
        c.update_settings(**changes)
    assert not c.take(SETTINGS)


def test_update_settings_unknown_name():
    c = make_server()
    with pytest.raises((TypeError, ValueError)):
        c.update_settings(no_such_setting=1)


def test_settings_dicts_are_copies():
    c = make_server()
    c.local_settings["max_concurrent_streams"] = 1
    c.remote_settings["max_frame_size"] = 1
    assert c.local_settings["max_concurrent_streams"] == 100
    assert c.remote_settings["max_frame_size"] == 16384


# ---------------------------------------------------------------------------------------------
# write_* rules

def test_write_frame_extension_and_priority():
    # docs/raw.md write_frame: extension types (>= 0xa) and PRIORITY only.
    c = make_client()
    c.write_frame(0xA, 0x3, 5, b"ext")
    c.write_frame(0xFF, 0, 0, b"")
    c.write_frame(PRIORITY, 0, 1, b"\0\0\0\0\x10")
    assert [(f.type, f.flags, f.stream, f.payload) for f in c.take()] == [
        (0xA, 0x3, 5, b"ext"), (0xFF, 0, 0, b""), (PRIORITY, 0, 1, b"\0\0\0\0\x10")]
    assert [(f.type, f.stream) for f in c.frames_out][-3:] == [(0xA, 5), (0xFF, 0), (PRIORITY, 1)]


@pytest.mark.parametrize("type", [0, 1, 3, 4, 5, 6, 7, 8, 9])
def test_write_frame_core_types_refused(type):
    c = make_client()
    with pytest.raises(errors.UsageError):
        c.write_frame(type, 0, 1, b"\0" * 8)
    assert not c.take()


def test_write_frame_over_peer_max_frame_size():
    # libcno semantics: the payload must fit the peer's max_frame_size.
    c = make_client()
    with pytest.raises(errors.UsageError):
        c.write_frame(0xA, 0, 0, b"x" * 16385)


@pytest.mark.parametrize("payload", [b"", b"1234567", b"123456789"])
def test_write_ping_length(payload):
    # docs/raw.md write_ping: 8 bytes.
    c = make_client()
    with pytest.raises(errors.UsageError):
        c.write_ping(payload)
    assert not c.take()


def test_write_ping_frame():
    c = make_client()
    c.write_ping(bytearray(b"12345678"))
    assert [(f.type, f.flags, f.payload) for f in c.take()] == [(PING, 0, b"12345678")]


@pytest.mark.parametrize("code", [100, 103, 199])
def test_write_head_informational_final(code):
    # docs/raw.md write_head: "A 1xx code may not be final."
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    with pytest.raises(errors.UsageError):
        c.write_head(1, code, "", "", [], True)
    assert not c.take()


def test_write_head_client_code_not_sent():
    # docs/raw.md: "a client passes code=0"; a request never carries :status (RFC 9113
    # 8.3.1). (Assumption: a non-zero code is ignored or refused, never sent.)
    c = make_client()
    try:
        c.write_head(1, 200, "GET", "/", CLIENT_HEADERS, True)
    except errors.UsageError:
        return
    [h] = c.take(HEADERS)
    assert ":status" not in dict(h.headers)


def test_write_head_server_method_path_not_sent():
    # docs/raw.md: "a server passes method="", path="""; a response never carries request
    # pseudo-headers (RFC 9113 8.3.2).
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    try:
        c.write_head(1, 200, "GET", "/x", [], True)
    except errors.UsageError:
        return
    [h] = c.take(HEADERS)
    assert h.headers == [(":status", "200")]


def test_write_push_on_client():
    # docs/raw.md write_push: server only.
    c = make_client()
    request(c)
    with pytest.raises(errors.UsageError):
        c.write_push(1, "GET", "/x", CLIENT_HEADERS)


@pytest.mark.parametrize("name", ["Content-Type", "X-A", "xA"])
def test_outbound_uppercase_name(name):
    # docs/raw.md: "Names must be lower case." (RFC 9113 8.2.1).
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    with pytest.raises(errors.UsageError):
        c.write_head(1, 200, "", "", [(name, "1")], True)
    assert not c.take()
    c.write_head(1, 200, "", "", [], False)
    with pytest.raises(errors.UsageError):
        c.write_tail(1, [(name, "1")])


def test_outbound_uppercase_name_client():
    c = make_client()
    with pytest.raises(errors.UsageError):
        c.write_head(1, 0, "GET", "/", CLIENT_HEADERS + [("User-Agent", "x")], True)
    assert not c.take()


@pytest.mark.parametrize("value", ["a\r\nx-injected: 1", "a\nb", "a\0b"])
def test_outbound_value_with_cr_lf_nul(value):
    # RFC 9113 8.2.1: a field value MUST NOT contain NUL, CR or LF; sending one is a usage
    # error (libcno: ASSERTION).
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    with pytest.raises(errors.UsageError):
        c.write_head(1, 200, "", "", [("x-a", value)], True)
    assert not c.take()


def test_bytes_accepted_wherever_str():
    # docs/raw.md: "bytes are accepted wherever str is".
    c = make_client()
    c.write_head(1, 0, b"POST", b"/up", [(b":scheme", b"https"), (b":authority", b"h"),
                                         (b"x-a", b"b")], False)
    c.write_data(1, b"body", False)
    c.write_tail(1, [(b"x-t", b"1")])
    hs = c.take(HEADERS)
    assert hs[0].headers == [(":method", "POST"), (":path", "/up"), (":scheme", "https"),
                             (":authority", "h"), ("x-a", "b")]
    assert hs[1].headers == [("x-t", "1")]


def test_str_and_bytes_mixed():
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    c.write_head(1, 200, b"", "", [("x-a", b"1"), (b"x-b", "2")], True)
    [h] = c.take(HEADERS)
    assert h.headers == [(":status", "200"), ("x-a", "1"), ("x-b", "2")]


def test_latin1_values_sent_as_bytes():
    # docs/raw.md: str is latin-1.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    c.write_head(1, 200, "", "", [("x-a", "caf\xe9")], True)
    [h] = c.take(HEADERS)
    assert b"caf\xe9" in hpack.Decoder().decode(h.block, raw=True)[1][1]


def test_sensitive_header_never_indexed():
    # docs/raw.md: (name, value, True) is never indexed by HPACK (RFC 7541 6.2.3).
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    c.write_head(1, 200, "", "", [("set-cookie", "secret", True), ("x-plain", "v")], True)
    [h] = c.take(HEADERS)
    decoded = hpack.Decoder().decode(h.block)
    assert isinstance(decoded[1], hpack.NeverIndexedHeaderTuple)
    assert tuple(decoded[1]) == ("set-cookie", "secret")
    assert not isinstance(decoded[2], hpack.NeverIndexedHeaderTuple)


def test_write_head_splits_large_header_block():
    # RFC 9113 6.10 / 4.2: a block over the peer's max_frame_size goes out as HEADERS +
    # CONTINUATION, never above the frame size, nothing interleaved.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    big = [("x-h%d" % i, "v" * 1000) for i in range(40)]
    c.write_head(1, 200, "", "", big, True)
    out = c.take()
    assert out[0].type == HEADERS and all(f.type == 9 for f in out[1:]) and len(out) > 1
    assert all(len(f.payload) <= 16384 for f in out)
    assert out[0].headers == [(":status", "200")] + big


def test_write_head_request_pseudo_headers():
    # docs/raw.md: a client's :method and :path come from the arguments.
    c = make_client()
    c.write_head(1, 0, "DELETE", "/item/1", CLIENT_HEADERS + [("x-a", "1")], True)
    [h] = c.take(HEADERS)
    assert h.flags & 0x1
    assert dict(h.headers)[":method"] == "DELETE" and dict(h.headers)[":path"] == "/item/1"
    assert h.headers[-1] == ("x-a", "1")
    assert all(k.startswith(":") for k, _ in h.headers[:4])


# ---------------------------------------------------------------------------------------------
# Events

def test_callback_exception_propagates_from_data_received():
    # docs/raw.md: "An exception raised by an event method aborts the call that ran it and
    # reaches its caller unchanged."
    class Boom(Exception):
        pass

    boom = Boom("from on_message_head")

    class C(recorder_class()):
        def on_message_head(self, *args):
            raise boom

    c = make_server(cls=C)
    with pytest.raises(Boom) as ei:
        open_stream(c, 1)
    assert ei.value is boom


def test_callback_exception_propagates_from_write():
    class Boom(Exception):
        pass

    class C(recorder_class()):
        armed = False

        def on_writev(self, chunks):
            if self.armed:
                raise Boom()
            super().on_writev(chunks)

    c = make_client(cls=C)
    c.armed = True
    with pytest.raises(Boom):
        c.write_ping(b"12345678")


def test_callback_exception_not_wrapped():
    # A KeyError in on_message_data comes out as that KeyError, not a CnoError.
    class C(recorder_class()):
        def on_message_data(self, stream, data):
            raise KeyError("mine")

    c = make_server(cls=C)
    open_stream(c, 1)
    with pytest.raises(KeyError) as ei:
        c.feed(data(1, b"x"))
    assert ei.value.args == ("mine",)


def test_one_writev_per_call_data_received():
    # docs/raw.md on_writev: "at most once per public call (output is coalesced)".
    c = make_server()
    n = c.writev_calls
    c.feed(ping(b"1" * 8), ping(b"2" * 8), settings(), ping(b"3" * 8),
           headers(1, c.block(REQ), end_stream=True))
    assert c.writev_calls == n + 1
    assert len(c.take()) == 4


def test_one_writev_per_call_write_data():
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.write_head(1, 200, "", "", [], False)
    n = c.writev_calls
    c.write_data(1, b"x" * 60000, True)
    assert c.writev_calls == n + 1
    assert len(c.take(DATA)) >= 4


def test_one_writev_for_head_with_continuations():
    c = make_server()
    open_stream(c, 1, end_stream=True)
    n = c.writev_calls
    c.write_head(1, 200, "", "", [("x-h%d" % i, "v" * 1000) for i in range(40)], True)
    assert c.writev_calls == n + 1


def test_cork_holds_output_until_uncork():
    # docs/raw.md cork()/uncork(): a response's head and body in one on_writev.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    n = c.writev_calls
    c.cork()
    c.write_head(1, 200, "", "", [("content-length", "5")], False)
    c.write_data(1, b"hello", True)
    assert c.writev_calls == n and not c.out
    c.uncork()
    assert c.writev_calls == n + 1
    frames = c.take()
    assert [f.type for f in frames] == [HEADERS, DATA]
    assert frames[1].payload == b"hello" and frames[1].flags & ACK   # (END_STREAM)
    c.uncork()   # nothing held: nothing written
    assert c.writev_calls == n + 1


def test_uncork_inside_an_event_defers_to_the_end_of_the_call():
    class Server(recorder_class()):
        def on_message_head(self, stream, code, method, path, headers):
            super().on_message_head(stream, code, method, path, headers)
            self.cork()
            self.write_head(stream, 200, "", "", [], True)
            self.uncork()
            assert self.writev_calls == 0   # (still inside data_received)

    c = make_server(cls=Server)
    c.writev_calls = 0
    c.feed(headers(1, c.block(REQ), end_stream=True))
    assert c.writev_calls == 1
    assert [f.type for f in c.take()] == [HEADERS]


def test_a_close_hands_out_what_cork_held():
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.cork()
    c.write_head(1, 200, "", "", [], True)
    c.shutdown()   # nothing is open: the connection closes (on_close)
    assert c.events[-1] == ("close",)
    assert [f.type for f in c.take()] == [HEADERS, 0x7]   # the response, the GOAWAY


def test_one_writev_connection_made():
    c = recorder_class()(server=False)
    c.connection_made(True)
    assert c.writev_calls == 1
    assert bytes(c.wire).startswith(PREFACE)


def test_no_writev_without_output():
    c = make_server()
    open_stream(c, 1)
    n = c.writev_calls
    c.feed(data(1, b"x"))
    assert c.writev_calls == n


def test_writev_chunks_are_bytes_like():
    seen = []

    class C(recorder_class()):
        def on_writev(self, chunks):
            seen.append(chunks)
            super().on_writev(chunks)

    c = make_server(cls=C)
    assert seen
    for chunks in seen:
        assert isinstance(chunks, (list, tuple))
        for ch in chunks:
            memoryview(ch)


def test_on_frame_send():
    # docs/raw.md: on_frame_send for every frame out.
    c = make_client()
    c.write_ping(b"abcdefgh")
    assert [(f.type, f.flags, f.stream, f.payload) for f in c.frames_out] == [
        (PING, 0, 0, b"abcdefgh")]


def test_base_class_usable_without_events():
    # docs/raw.md: "the defaults do nothing".
    c = raw.Connection(server=True)
    c.connection_made(True)
    c.data_received(PREFACE + settings() + settings_ack()
                    + headers(1, literal_block(REQ), end_stream=True) + ping())
    c.write_head(1, 200, "", "", [], False)
    assert c.write_data(1, b"ok", True) == 2
    c.connection_lost()


def test_subclass_with_few_events():
    # docs/raw.md: a method a class does not define costs nothing (and is not needed).
    got = []

    class C(raw.Connection):
        def on_message_head(self, stream, code, method, path, hs):
            got.append((stream, method, path))

    c = C(server=True)
    c.connection_made(True)
    c.data_received(PREFACE + settings() + headers(1, literal_block(REQ), end_stream=True))
    assert got == [(1, "GET", "/")]


def test_subclass_defined_after_instantiation_gets_its_events():
    # docs/raw.md: "Event methods are found per class, so a subclass defined at any time gets
    # its own called" (known libcno defect: the vtable was cached on the parent).
    log = []

    class A(raw.Connection):
        def on_writev(self, chunks):
            log.append("A.writev")

    a = A(server=True)
    a.connection_made(True)

    class B(A):
        def on_message_head(self, stream, code, method, path, hs):
            log.append(("B.head", stream))

    b = B(server=True)
    b.connection_made(True)
    b.data_received(PREFACE + settings() + headers(1, literal_block(REQ), end_stream=True))
    assert ("B.head", 1) in log
    log.clear()
    a.data_received(PREFACE + settings() + headers(1, literal_block(REQ), end_stream=True))
    assert ("B.head", 1) not in log and "A.writev" in log


def test_sibling_subclasses_keep_their_own_events():
    class Base(raw.Connection):
        pass

    class X(Base):
        def on_message_head(self, *a):
            self.got = "X"

    class Y(Base):
        def on_message_head(self, *a):
            self.got = "Y"

    w = PREFACE + settings() + headers(1, literal_block(REQ), end_stream=True)
    for cls in (X, Y, X):
        c = cls(server=True)
        c.connection_made(True)
        c.data_received(w)
        assert c.got == cls.__name__


def test_inherited_event_method_called():
    class Mixin:
        def on_pong(self, data):
            self.pong = data

    class C(Mixin, raw.Connection):
        pass

    c = C(server=False)
    c.connection_made(True)
    c.data_received(settings() + ping(b"pongpong", ack=True))
    assert c.pong == b"pongpong"


def test_on_close_fires_once_on_connection_lost():
    c = make_client()
    c.connection_lost()
    assert c.of("close") == [("close",)]


def test_write_reset_fires_stream_end():
    # docs/raw.md write_reset: RST_STREAM and on_stream_end(stream, code, CNO_LOCAL).
    c = make_client()
    request(c, final=False)
    c.reset_log()
    c.write_reset(1, raw.CNO_RST_CANCEL)
    assert c.events == [("end", 1, raw.CNO_RST_CANCEL, raw.CNO_LOCAL)]
    [f] = c.take()
    assert (f.type, f.stream, f.error_code) == (3, 1, raw.CNO_RST_CANCEL)


def test_draining_after_goaway_received_while_streams_run():
    # docs/raw.md `draining`: once a GOAWAY arrived no new stream may start (RFC 9113
    # 6.8), though the streams at or below its last-stream-id go on.
    c = make_client()
    c.write_head(1, 0, "GET", "/", [(":scheme", "https"), (":authority", "a")], True)
    assert not c.draining
    c.data_received(goaway(1))
    assert c.draining and not c.closed and 1 in c.open_streams
    with pytest.raises(errors.ConnectionClosed):
        c.write_head(3, 0, "GET", "/", [(":scheme", "https"), (":authority", "a")], True)


def test_draining_after_our_shutdown_and_http1_connection_close():
    s = make_server()
    assert not s.draining
    s.shutdown()
    assert s.draining
    h1 = raw.Connection(server=False)
    h1.connection_made(False)
    h1.write_head(1, 0, "GET", "/", [(":scheme", "http"), (":authority", "a")], True)
    h1.data_received(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\n")
    assert h1.draining   # (RFC 9112 9.6: no request after this exchange)
