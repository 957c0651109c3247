"""RFC 9218 extensible priorities in cno.raw (docs/raw.md, Priorities): the `priority` field
(section 4, 5 and RFC 8941's Dictionary), PRIORITY_UPDATE (7.1), SETTINGS_NO_RFC7540_PRIORITIES
(2.1), write_priority / priority / on_priority_update, and the order in which streams waiting
for flow control hear on_flow_increase (10), checked against hand-computed orders."""
import base64
import struct

import hpack
import pytest

import cno.raw as raw
from cno import errors
from h2_pair import AUTHORITY, SCHEME, CnoPeer, cno_pair, pump
from raw_frames import (
    DATA, ENHANCE_YOUR_CALM, FRAME_SIZE_ERROR, PREFACE, PROTOCOL_ERROR, REQ, RESP, SETTINGS,
    assert_alive, expect_connection_error, frame, headers, make_client, make_server,
    push_promise, recorder_class, request, settings, window_update,
)

PRIORITY_UPDATE = 0x10
NO_RFC7540 = 0x9


def priority_update(target, value, stream=0):
    """An HTTP/2 PRIORITY_UPDATE frame (RFC 9218 7.1): Prioritized Stream ID, field value."""
    if isinstance(value, str):
        value = value.encode("latin-1")
    return frame(PRIORITY_UPDATE, 0, stream, struct.pack(">I", target) + value)


_CLASSES = {}


def prio_class(push=False):
    """A Recorder that also logs on_priority_update as ("prio", stream, urgency, incremental)."""
    if push not in _CLASSES:
        class PrioRecorder(recorder_class(push)):
            def on_priority_update(self, stream, urgency, incremental):
                self.events.append(("prio", stream, urgency, incremental))
        _CLASSES[push] = PrioRecorder
    return _CLASSES[push]


def server(**kw):
    return make_server(cls=prio_class(), **kw)


def request_with(c, sid, values, end_stream=True):
    """The peer opens sid with a request carrying one `priority` line per value."""
    fields = REQ + [("priority", v) for v in values]
    c.feed(headers(sid, c.block(fields), end_stream=end_stream))


# ---------------------------------------------------------------------------------------------
# The priority field (RFC 9218 4, 5; RFC 8941 4.2.2): read on requests, as the server does

VALID = [
    ("absent", [], (3, False)),
    ("u0", ["u=0"], (0, False)),
    ("u7", ["u=7"], (7, False)),
    ("i-bare", ["i"], (3, True)),
    ("i-true", ["i=?1"], (3, True)),
    ("i-false", ["i=?0"], (3, False)),
    ("u-and-i", ["u=5, i"], (5, True)),
    ("i-then-u", ["i, u=1"], (1, True)),
    ("no-space", ["u=2,i"], (2, True)),
    ("ows-tab", ["u=1 ,\ti"], (1, True)),
    ("later-member-wins", ["u=1, u=6"], (6, False)),
    ("later-member-wins-i", ["i, i=?0"], (3, False)),
    ("params-ignored", ["u=2;a=1;b, i;c=?0"], (2, True)),
    ("param-after-space", ["u=2; a=1"], (2, False)),
    ("unknown-keys", ["x=1, u=4, foo-bar_9.*=tok, i"], (4, True)),
    ("star-key", ["*x, u=1"], (1, False)),
    # every kind of member RFC 8941 / RFC 9651 defines, as unknown parameters
    ("every-type", ['a=-12, b=1.5, c="s\\"x\\\\", d=tok/en:x, e=:AQID:, f=?0, g=@1659578233, '
                    'h=%"f%c3%bc", k=(1 "a" tok;p);q=1, l=(), m=( 1  2 ), u=2, i'], (2, True)),
    # several field lines make one Dictionary (RFC 8941 4.2)
    ("lines-merge", ["u=1", "i"], (1, True)),
    ("lines-override", ["u=1", "u=2"], (2, False)),
    ("lines-empty", ["u=4", ""], (4, False)),
]

# A Dictionary that parses, with a `u` or `i` that is out of range or of another type: that
# parameter alone is ignored (4: "MUST be ignored"), so its default applies; `i` shows the
# rest of the field still counts.
IGNORED = [
    ("u-8", "u=8, i", (3, True)),
    ("u-negative", "u=-1, i", (3, True)),
    ("u-decimal", "u=1.0, i", (3, True)),
    ("u-string", 'u="1", i', (3, True)),
    ("u-boolean", "u=?1, i", (3, True)),
    ("u-alone", "u, i", (3, True)),
    ("u-token", "u=a, i", (3, True)),
    ("u-inner-list", "u=(1), i", (3, True)),
    ("u-date", "u=@1, i", (3, True)),
    ("u-15-digits", "u=999999999999999, i", (3, True)),
    ("i-integer", "u=2, i=1", (2, False)),
    ("i-token", "u=2, i=yes", (2, False)),
    ("u-valid-then-invalid", "u=1, u=9, i", (3, True)),
    ("u-invalid-then-valid", "u=9, u=1, i", (1, True)),
]

# Not a Dictionary: the whole field is ignored (RFC 8941 4.2: parsing fails), so `i` is too.
INVALID = [
    ("trailing-comma", "i, u=1,"),
    ("leading-comma", ",i"),
    ("double-comma", "u=1,,i"),
    ("upper-case-key", "i, U=1"),
    ("digit-key", "i, 1a=1"),
    ("no-comma", "u=1 i"),
    ("space-before-param", "i ;a"),
    ("empty-param", "i;"),
    ("integer-16-digits", "i, u=1234567890123456"),
    ("decimal-13-digit-integer", "i, x=1234567890123.5"),
    ("decimal-4-fraction-digits", "i, x=1.2345"),
    ("decimal-ends-with-dot", "i, x=1."),
    ("minus-alone", "i, x=-"),
    ("string-unterminated", 'i, x="abc'),
    ("string-bad-escape", 'i, x="a\\b"'),
    ("string-non-ascii", 'i, x="\xe9"'),
    ("boolean-2", "i, x=?2"),
    ("boolean-empty", "i, x=?"),
    ("bytes-unterminated", "i, x=:AQID"),
    ("bytes-bad-char", "i, x=:A*:"),
    ("inner-list-unterminated", "i, x=(1 2"),
    ("inner-list-comma", "i, x=(1,2)"),
    ("date-decimal", "i, x=@1.5"),
    ("display-no-quote", "i, x=%abc"),
    ("display-upper-hex", 'i, x=%"%C3%BC"'),
    ("display-bad-utf8", 'i, x=%"%ff"'),
    ("display-overlong", 'i, x=%"%c0%af"'),
    ("display-truncated", 'i, x=%"%c3"'),
    ("display-surrogate", 'i, x=%"%ed%a0%80"'),
    ("unknown-item-type", "i, x=#1"),
    ("equals-nothing", "i, x="),
    ("item-then-garbage", "i, x=1a"),
]


@pytest.mark.parametrize("values, expected", [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_request_field(values, expected):
    c = server()
    request_with(c, 1, values)
    assert c.priority(1) == expected
    assert c.of("head")[0][5] == [(":scheme", "https"), (":authority", "example.com")] + [
        ("priority", v) for v in values], "the field still reaches the application"


@pytest.mark.parametrize("value, expected", [v[1:] for v in IGNORED], ids=[v[0] for v in IGNORED])
def test_request_field_parameter_ignored(value, expected):
    c = server()
    request_with(c, 1, [value])
    assert c.priority(1) == expected


@pytest.mark.parametrize("value", [v[1] for v in INVALID], ids=[v[0] for v in INVALID])
def test_request_field_not_a_dictionary(value):
    c = server()
    request_with(c, 1, [value])
    assert c.priority(1) == (3, False)
    assert c.of("head"), "an invalid priority field does not make the request malformed"


def test_request_field_bad_line_spoils_all_lines():
    # RFC 8941 4.2: the lines are one field value; if it does not parse, none of it counts.
    c = server()
    request_with(c, 1, ["i", "u=1."])
    assert c.priority(1) == (3, False)


def test_priority_of_unknown_stream():
    c = server()
    with pytest.raises(errors.InvalidStream):
        c.priority(1)


def test_each_stream_its_own():
    c = server()
    request_with(c, 1, ["u=1"])
    request_with(c, 3, [])
    request_with(c, 5, ["i"])
    assert [c.priority(s) for s in (1, 3, 5)] == [(1, False), (3, False), (3, True)]


# The client side: its own request's field, then the response's (RFC 9218 8: "The absence of
# a priority parameter in an HTTP response indicates the server's disinterest in changing the
# client-provided value").

@pytest.mark.parametrize("response, expected", [
    (None, (5, True)),
    ("u=1", (1, True)),
    ("i=?0", (5, False)),
    ("u=0, i=?0", (0, False)),
    ("u=9", (5, True)),
    ("u=1,", (5, True)),
], ids=["none", "urgency", "incremental", "both", "out-of-range", "invalid"])
def test_response_field_merges(response, expected):
    c = make_client(cls=prio_class())
    sid = request(c, extra=[("priority", "u=5, i")])
    assert c.priority(sid) == (5, True)
    fields = RESP + ([("priority", response)] if response is not None else [])
    c.feed(headers(sid, c.block(fields)))
    assert c.priority(sid) == expected


def test_server_response_field_sets_its_own_view():
    # The application's own `priority` field in a response head is its view (RFC 9218 8),
    # over the request's where it speaks.
    c = server()
    request_with(c, 1, ["u=6, i"])
    c.write_head(1, 200, "", "", [("priority", "u=1")], False)
    assert c.priority(1) == (1, True)
    assert [h for h in c.take(1)[-1].headers if h[0] == "priority"] == [("priority", "u=1")]


def test_trailers_field_is_not_a_signal():
    c = server()
    request_with(c, 1, [], end_stream=False)
    c.write_head(1, 200, "", "", [], False)
    c.write_tail(1, [("priority", "u=0")])
    assert c.priority(1) == (3, False)


def test_pushed_request_field():
    # RFC 9218 10: a server "can signal the intended priority to the client by including the
    # Priority field in a PUSH_PROMISE".
    c = make_client(cls=prio_class(push=True), push=True)
    sid = request(c)
    c.feed(push_promise(sid, 2, c.block([(":method", "GET"), (":scheme", "https"),
                                         (":path", "/p"), (":authority", "example.com"),
                                         ("priority", "u=6, i")])))
    assert c.priority(2) == (6, True)


def test_server_push_field_sets_priority():
    c = server()
    request_with(c, 1, [], end_stream=True)
    promised = c.write_push(1, "GET", "/style.css", [("priority", "u=0")])
    assert c.priority(promised) == (0, False)


def test_http1_field_left_to_the_application():
    # docs/raw.md: over HTTP/1.1 the engine does not read the field (one response at a time
    # has nothing to schedule); priority() reports the default or write_priority's value.
    c = recorder_class()(server=True)
    c.connection_made(False)
    c.data_received(b"GET / HTTP/1.1\r\nhost: x\r\npriority: u=1, i\r\n\r\n")
    assert ("priority", "u=1, i") in c.of("head")[0][5]
    assert c.priority(1) == (3, False)
    c.wire.clear()
    c.write_priority(1, 0, True)
    assert c.priority(1) == (0, True)
    assert not c.wire


# ---------------------------------------------------------------------------------------------
# PRIORITY_UPDATE (RFC 9218 7.1)

def test_update_applies_and_fires_event():
    c = server()
    request_with(c, 1, ["u=5"], end_stream=False)
    c.feed(priority_update(1, "u=1, i"))
    assert c.priority(1) == (1, True)
    assert c.of("prio") == [("prio", 1, 1, True)]


def test_update_omitted_parameters_take_defaults():
    # 7: "Omitting a priority parameter is a signal to use its default value."
    c = server()
    request_with(c, 1, ["u=5, i"], end_stream=False)
    c.feed(priority_update(1, "i=?0"))
    assert c.priority(1) == (3, False)
    c.feed(priority_update(1, ""))
    assert c.priority(1) == (3, False)
    assert c.of("prio") == [("prio", 1, 3, False)] * 2


def test_update_unparsable_value_ignored():
    # 7: "Failure to parse the Priority Field Value MAY be treated as a connection error";
    # cno ignores the frame.
    c = server()
    request_with(c, 1, ["u=5"], end_stream=False)
    c.feed(priority_update(1, "u=1,"))
    assert c.priority(1) == (5, False)
    assert not c.of("prio")
    assert_alive(c)


def test_update_before_headers_is_kept():
    # 7: "Servers SHOULD buffer the most recently received PRIORITY_UPDATE frame and apply it
    # once the referenced stream is opened", overriding the field ("the most recently
    # received PRIORITY_UPDATE frame can be considered as the most up-to-date information").
    c = server()
    c.feed(priority_update(1, "u=2"), priority_update(1, "u=6, i"))
    assert not c.of("prio")
    request_with(c, 1, ["u=1"])
    assert c.priority(1) == (6, True)


def test_update_for_closed_stream_ignored():
    c = server()
    request_with(c, 1, [])
    c.write_head(1, 200, "", "", [], True)
    assert 1 not in c.open_streams
    c.feed(priority_update(1, "u=0"))
    assert not c.of("prio")
    assert_alive(c)


def test_update_stream_id_reserved_bit_ignored():
    c = server()
    request_with(c, 1, [], end_stream=False)
    c.feed(priority_update(0x80000001, "u=0"))
    assert c.priority(1) == (0, False)


def test_update_on_open_push_stream():
    c = server()
    request_with(c, 1, [], end_stream=False)
    promised = c.write_push(1, "GET", "/p", [])
    c.feed(priority_update(promised, "u=1"))
    assert c.priority(promised) == (1, False)
    assert c.of("prio") == [("prio", promised, 1, False)]


def test_update_on_closed_push_stream_ignored():
    c = server()
    request_with(c, 1, [], end_stream=False)
    promised = c.write_push(1, "GET", "/p", [])
    c.write_head(promised, 204, "", "", [], True)
    c.feed(priority_update(promised, "u=1"))
    assert not c.of("prio")
    assert_alive(c)


def test_update_received_by_client():
    # "Servers MUST NOT send PRIORITY_UPDATE frames. If a client receives a PRIORITY_UPDATE
    # frame, it MUST respond with a connection error of type PROTOCOL_ERROR."
    c = make_client(cls=prio_class())
    sid = request(c)
    expect_connection_error(c, priority_update(sid, "u=1"), PROTOCOL_ERROR)


def test_update_on_a_stream():
    # "The Stream Identifier field ... MUST be zero (0x0). Receiving a PRIORITY_UPDATE frame
    # with a field of any other value MUST be treated as a connection error of type
    # PROTOCOL_ERROR."
    c = server()
    request_with(c, 1, [], end_stream=False)
    expect_connection_error(c, priority_update(1, "u=1", stream=1), PROTOCOL_ERROR)


def test_update_for_stream_zero():
    # "If a PRIORITY_UPDATE frame is received with a prioritized stream ID of 0x0, the
    # recipient MUST respond with a connection error of type PROTOCOL_ERROR."
    c = server()
    expect_connection_error(c, priority_update(0, "u=1"), PROTOCOL_ERROR)


@pytest.mark.parametrize("size", [0, 3])
def test_update_too_short(size):
    # RFC 9113 4.2: a frame too small for its fixed fields: FRAME_SIZE_ERROR.
    c = server()
    expect_connection_error(c, frame(PRIORITY_UPDATE, 0, 0, b"\0" * size), FRAME_SIZE_ERROR)


def test_update_for_idle_push_stream():
    # "Servers that receive a PRIORITY_UPDATE for a push stream in the "idle" state MUST
    # respond with a connection error of type PROTOCOL_ERROR."
    c = server()
    request_with(c, 1, [], end_stream=False)
    expect_connection_error(c, priority_update(2, "u=1"), PROTOCOL_ERROR)


def test_update_idle_streams_bounded_by_max_concurrent_streams():
    # "The number of streams that have been prioritized but remain in the "idle" state plus
    # the number of active streams ... MUST NOT exceed the value of the
    # SETTINGS_MAX_CONCURRENT_STREAMS parameter. Servers that receive such a PRIORITY_UPDATE
    # MUST respond with a connection error of type PROTOCOL_ERROR."
    c = server(local={"max_concurrent_streams": 2})
    request_with(c, 1, [], end_stream=False)               # 1 active
    c.feed(priority_update(3, "u=1"))                       # + 1 idle = 2
    c.feed(priority_update(3, "u=2"))                       # the same one again: still 2
    assert_alive(c)
    expect_connection_error(c, priority_update(5, "u=1"), PROTOCOL_ERROR)


def test_update_idle_streams_skipped_are_forgotten():
    # Ids below a stream the peer opened can never open (RFC 9113 5.1.1): what was kept for
    # them no longer counts against the limit.
    c = server(local={"max_concurrent_streams": 2})
    c.feed(priority_update(3, "u=1"))
    request_with(c, 5, [])                  # 3 is closed now; 5 completes at once
    c.write_head(5, 204, "", "", [], True)
    c.feed(priority_update(7, "u=1"), priority_update(9, "u=1"))   # 0 active + 2 idle
    assert_alive(c)
    expect_connection_error(c, priority_update(11, "u=1"), PROTOCOL_ERROR)


def test_update_for_idle_stream_after_goaway_ignored():
    # Past our GOAWAY no stream opens: nothing is kept for one (kept, it would count against
    # the limit of 1 and fail the connection).
    c = server(local={"max_concurrent_streams": 1})
    request_with(c, 1, [], end_stream=False)
    c.shutdown()
    c.feed(priority_update(3, "u=1"))
    assert not c.closed and c.of("prio") == []


def test_updates_spend_control_frame_budget():
    # A flood of PRIORITY_UPDATEs while the peer does not read counts as other control
    # frames do (docs/raw.md control_frame_budget).
    c = server()
    request_with(c, 1, [], end_stream=False)
    c.control_frame_budget = 3
    c.writing_paused = True
    c.feed(priority_update(1, "u=1") * 3)
    expect_connection_error(c, priority_update(1, "u=2"), ENHANCE_YOUR_CALM)
    assert c.stats["unread_replies"] == 4


def test_update_seen_by_on_frame():
    c = server()
    request_with(c, 1, [], end_stream=False)
    c.feed(priority_update(1, "u=1"))
    assert [(f.type, f.stream, f.payload) for f in c.frames_in if f.type == PRIORITY_UPDATE] == [
        (PRIORITY_UPDATE, 0, b"\0\0\0\x01u=1")]


def test_event_only_where_defined():
    # docs/raw.md: event methods a subclass does not define are never called; the update
    # applies all the same.
    c = make_server()
    request_with(c, 1, [], end_stream=False)
    c.feed(priority_update(1, "u=1"))
    assert c.priority(1) == (1, False)

    class Static(recorder_class()):
        seen = []

        @staticmethod
        def on_priority_update(stream, urgency, incremental):
            Static.seen.append((stream, urgency, incremental))

    c = make_server(cls=Static)
    request_with(c, 1, [], end_stream=False)
    c.feed(priority_update(1, "u=2, i"))
    assert Static.seen == [(1, 2, True)]


# ---------------------------------------------------------------------------------------------
# write_priority

def client_reading_updates():
    """A client whose server said SETTINGS_NO_RFC7540_PRIORITIES=1 in its first SETTINGS."""
    c = prio_class()(server=False)
    c.connection_made(True)
    c.feed(settings([(NO_RFC7540, 1)]))
    c.ack_settings()
    c.reset_log()
    return c


def test_client_write_priority_sends_update():
    c = client_reading_updates()
    sid = request(c)
    c.take()
    c.write_priority(sid, 2, True)
    [f] = c.take()
    assert (f.type, f.flags, f.stream, f.payload) == (
        PRIORITY_UPDATE, 0, 0, struct.pack(">I", sid) + b"u=2, i")
    assert c.priority(sid) == (2, True)
    assert c.frames_out[-1].type == PRIORITY_UPDATE
    c.write_priority(sid, 7)
    assert c.take()[0].payload == struct.pack(">I", sid) + b"u=7"
    assert c.priority(sid) == (7, False)


def test_client_write_priority_before_server_settings():
    # 2.1.1: "until the client receives the SETTINGS frame from the server, the client SHOULD
    # send both the HTTP/2 priority signals and the signals of this prioritization scheme".
    c = prio_class()(server=False)
    c.connection_made(True)
    sid = request(c)
    c.take()
    c.write_priority(sid, 1)
    assert [f.type for f in c.take()] == [PRIORITY_UPDATE]


def test_client_write_priority_silent_when_server_does_not_read():
    # 2.1.1: "if the client receives SETTINGS_NO_RFC7540_PRIORITIES with value of 0 or if the
    # settings parameter was absent, it SHOULD stop sending PRIORITY_UPDATE frames".
    c = make_client(cls=prio_class())      # the server's SETTINGS had no such parameter
    sid = request(c)
    c.take()
    c.write_priority(sid, 1, True)
    assert not c.take()
    assert c.priority(sid) == (1, True)


def test_client_write_priority_after_response_complete():
    # 7.1: clients SHOULD name streams "where data might still be received".
    c = client_reading_updates()
    sid = request(c, final=False)
    c.feed(headers(sid, c.block(RESP), end_stream=True))
    c.take()
    c.write_priority(sid, 1)
    assert not c.take()
    assert c.priority(sid) == (1, False)


def test_server_write_priority_sends_nothing():
    # 7.1: "Servers MUST NOT send PRIORITY_UPDATE frames."
    c = server()
    request_with(c, 1, ["u=5"], end_stream=False)
    c.take()
    c.write_priority(1, 0, True)
    assert not c.take()
    assert c.priority(1) == (0, True)
    assert not c.of("prio")
    c.feed(priority_update(1, "u=4"))          # the client's later signal wins
    assert c.priority(1) == (4, False)


@pytest.mark.parametrize("urgency", [-1, 8])
def test_write_priority_urgency_range(urgency):
    c = server()
    request_with(c, 1, [], end_stream=False)
    with pytest.raises(errors.UsageError):
        c.write_priority(1, urgency)


def test_write_priority_unknown_stream():
    c = server()
    with pytest.raises(errors.InvalidStream):
        c.write_priority(1, 1)


def test_write_priority_closed_connection():
    c = server()
    request_with(c, 1, [], end_stream=False)
    c.connection_lost()
    with pytest.raises(errors.ConnectionClosed):
        c.write_priority(1, 1)


# ---------------------------------------------------------------------------------------------
# SETTINGS_NO_RFC7540_PRIORITIES (RFC 9218 2.1)

def first_settings(c):
    c.connection_made(True)
    return dict([f for f in c.sent if f.type == SETTINGS][0].settings)


@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_sent_by_default(is_server):
    # docs/raw.md: cno reads no RFC 7540 signal and sends none, and says so ("If endpoints use
    # SETTINGS_NO_RFC7540_PRIORITIES, they MUST send it in the first SETTINGS frame").
    c = prio_class()(server=is_server)
    assert c.local_settings["no_rfc7540_priorities"] == 1
    assert first_settings(c)[NO_RFC7540] == 1
    assert raw.CNO_SETTINGS_NO_RFC7540_PRIORITIES == NO_RFC7540
    assert raw.CNO_FRAME_PRIORITY_UPDATE == PRIORITY_UPDATE


def test_turned_off_before_start():
    c = prio_class()(server=True)
    c.update_settings(no_rfc7540_priorities=0)
    assert NO_RFC7540 not in first_settings(c)   # 0 is the initial value: nothing to send
    assert c.local_settings["no_rfc7540_priorities"] == 0


def test_cannot_change_after_start():
    # "Senders MUST NOT change the SETTINGS_NO_RFC7540_PRIORITIES value after the first
    # SETTINGS frame."
    c = server()
    with pytest.raises(errors.UsageError):
        c.update_settings(no_rfc7540_priorities=0)
    c.update_settings(no_rfc7540_priorities=1)   # the same value: no change
    assert not c.take(SETTINGS)


def test_value_range_when_sending():
    c = prio_class()(server=True)
    with pytest.raises(ValueError):
        c.update_settings(no_rfc7540_priorities=2)


def test_received_value():
    c = server(peer_settings=None)
    assert c.remote_settings["no_rfc7540_priorities"] == 0
    c = prio_class()(server=True)
    c.connection_made(True)
    c.feed(PREFACE + settings([(NO_RFC7540, 1)]))
    assert c.remote_settings["no_rfc7540_priorities"] == 1
    c.feed(settings([(NO_RFC7540, 1)]))          # repeated unchanged: fine
    assert_alive(c)


def test_received_value_above_1():
    # "Any value other than 0 or 1 MUST be treated as a connection error ... of type
    # PROTOCOL_ERROR."
    c = prio_class()(server=True)
    c.connection_made(True)
    expect_connection_error(c, PREFACE + settings([(NO_RFC7540, 2)]), PROTOCOL_ERROR)


@pytest.mark.parametrize("first, later", [(1, 0), (None, 1)], ids=["1-then-0", "absent-then-1"])
def test_received_value_changed(first, later):
    # "Receivers that detect a change MAY treat it as a connection error of type
    # PROTOCOL_ERROR": cno does. An absent value is the initial 0 ("If endpoints use
    # SETTINGS_NO_RFC7540_PRIORITIES, they MUST send it in the first SETTINGS frame").
    c = prio_class()(server=True)
    c.connection_made(True)
    c.feed(PREFACE + settings([(NO_RFC7540, first)] if first is not None else []))
    expect_connection_error(c, settings([(NO_RFC7540, later)]), PROTOCOL_ERROR)


def test_received_absent_then_0_is_no_change():
    c = make_server(cls=prio_class())
    c.feed(settings([(NO_RFC7540, 0)]))
    assert_alive(c)


def test_http2_settings_header_is_not_the_first_frame():
    # An h2c upgrade's HTTP2-Settings (RFC 7540 3.2.1) is applied as SETTINGS, but it is no
    # SETTINGS frame: the client's first frame may still carry the value.
    c = prio_class()(server=True)
    c.disallow_h2_upgrade = False
    c.connection_made(False)
    h2s = base64.urlsafe_b64encode(struct.pack(">HI", 3, 100)).decode().rstrip("=")
    c.data_received(("GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade, http2-settings\r\n"
                     "upgrade: h2c\r\nhttp2-settings: %s\r\n\r\n" % h2s).encode())
    c.data_received(PREFACE + settings([(NO_RFC7540, 1)]))
    assert c.remote_settings["no_rfc7540_priorities"] == 1
    assert not c.closed


# ---------------------------------------------------------------------------------------------
# The scheduler (RFC 9218 10): who hears on_flow_increase first when a window opens

class Writer(prio_class()):
    """A server whose on_flow_increase(stream) writes up to ``step`` bytes of that stream's
    body (``left``), and logs the events ("flow", stream) as they come."""

    step = 1000

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.left = {}

    def on_flow_increase(self, stream):
        super().on_flow_increase(stream)
        if stream and self.left.get(stream):
            self.send(stream, self.step)

    def send(self, stream, n):
        n = min(n, self.left[stream])
        self.left[stream] -= self.write_data(stream, b"x" * n, self.left[stream] == n)


def data_order(c):
    """(stream, bytes) of each DATA frame written since the last take."""
    return [(f.stream, len(f.payload)) for f in c.take(DATA)]


# stream: its request's priority field (None: none). Hand-computed order: urgency 0 (3);
# urgency 3: non-incremental by id (1, 13), then incremental (11); urgency 5, all
# incremental (5, 7, 9); urgency 7 (15).
STREAMS = {1: None, 3: "u=0", 5: "u=5, i", 7: "u=5, i", 9: "u=5, i", 11: "i", 13: None,
           15: "u=7"}
ORDER = [3, 1, 13, 11, 5, 7, 9, 15]


def blocked(streams=STREAMS, body=10000, cls=Writer):
    """A Writer whose streams all wait for the connection window: their heads sent, the
    window used up by a filler (the last, lowest-urgency stream, which then waits too), each
    of the others cut short writing ``body`` bytes. The streams' own windows are large."""
    c = make_server(cls=cls, peer_settings={"initial_window_size": 1 << 20})
    ids = sorted(streams)
    for sid in ids:
        request_with(c, sid, [streams[sid]] if streams[sid] else [])
        c.write_head(sid, 200, "", "", [], False)
        c.left[sid] = body
    filler = ids[-1]
    c.left[filler] += 65535
    c.send(filler, 1 << 20)
    assert c.left[filler] == body
    for sid in ids[:-1]:
        c.send(sid, body)
        assert c.left[sid] == body
    c.reset_log()
    return c


def test_order_of_one_opening():
    c = blocked()
    assert c.priority_order(STREAMS) == ORDER
    c.feed(window_update(0, 100000))
    assert c.of("flow") == [("flow", s) for s in ORDER] + [("flow", 0)]
    assert data_order(c) == [(s, 1000) for s in ORDER]


def test_order_window_lasts_for_some():
    # The window runs out in the middle of the third stream: the rest wait (in order) for
    # the next opening; the one cut short goes back in line, at its place.
    c = blocked()
    c.feed(window_update(0, 2500))
    assert c.of("flow") == [("flow", 3), ("flow", 1), ("flow", 13), ("flow", 0)]
    assert data_order(c) == [(3, 1000), (1, 1000), (13, 500)]
    c.events.clear()
    c.feed(window_update(0, 100000))
    assert c.of("flow") == [("flow", s) for s in (13, 11, 5, 7, 9, 15)] + [("flow", 0)]


def test_incremental_round_robin():
    # Incremental streams of one urgency take turns: each opening starts after the one that
    # last sent DATA.
    streams = {5: "u=5, i", 7: "u=5, i", 9: "u=5, i", 11: "u=6"}
    c = blocked(streams)
    c.step = 1 << 20      # each takes all the window it is given
    firsts = []
    for _ in range(5):
        c.feed(window_update(0, 1000))
        firsts.append(data_order(c))
        assert c.of("flow")[-1] == ("flow", 0)
        c.events.clear()
    assert firsts == [[(5, 1000)], [(7, 1000)], [(9, 1000)], [(5, 1000)], [(7, 1000)]]


def test_non_incremental_one_at_a_time():
    # Non-incremental streams of one urgency are served by id, each to its end.
    c = blocked({1: None, 3: None, 5: "u=4"}, body=2500)
    c.step = 1 << 20
    out = []
    for _ in range(4):
        c.feed(window_update(0, 1000))
        out.append(data_order(c))
    assert out == [[(1, 1000)], [(1, 1000)], [(1, 500), (3, 500)], [(3, 1000)]]


def test_update_reorders_waiting_streams():
    c = blocked()
    c.feed(priority_update(15, "u=0"), priority_update(3, "u=6"))
    c.events.clear()
    c.feed(window_update(0, 100000))
    assert c.of("flow")[:2] == [("flow", 15), ("flow", 1)]
    assert c.of("flow")[-2:] == [("flow", 3), ("flow", 0)]


def test_write_priority_reorders_waiting_streams():
    c = blocked()
    c.write_priority(9, 0, False)        # urgency 0, after 3 (by id)
    c.feed(window_update(0, 100000))
    assert c.of("flow")[:3] == [("flow", 3), ("flow", 9), ("flow", 1)]


def test_stream_window_closed_waits_for_its_own_update():
    c = blocked({1: "u=0", 3: None})
    c.feed(settings(initial_window_size=0))   # stream windows now negative: 0 - what was sent
    c.events.clear()
    c.feed(window_update(0, 100000))
    assert c.of("flow") == [("flow", 0)]
    c.feed(window_update(3, 65535 + 20000))
    assert c.of("flow") == [("flow", 0), ("flow", 3)]
    assert data_order(c) == [(3, 1000)]


def test_settings_window_growth_runs_the_order():
    # An INITIAL_WINDOW_SIZE increase opens every stream window: the same order.
    c = make_server(cls=Writer, peer_settings={"initial_window_size": 1000})
    c.feed(window_update(0, 100000))
    for sid, value in ((1, []), (3, ["u=1"])):
        request_with(c, sid, value)
        c.write_head(sid, 200, "", "", [], False)
        c.left[sid] = 5000
        c.send(sid, 5000)                  # cut short by its stream window
        assert c.left[sid] == 4000
    c.reset_log()
    c.feed(settings(initial_window_size=3000))
    assert c.of("flow") == [("flow", 3), ("flow", 1), ("flow", 0)]
    assert data_order(c) == [(3, 1000), (1, 1000)]


def test_stream_that_ended_is_not_told():
    c = blocked({1: None, 3: "u=1", 5: "u=2"})
    c.write_reset(3, 0x8)
    c.events = [e for e in c.events if e[0] == "flow"]
    c.feed(window_update(0, 100000))
    assert c.of("flow") == [("flow", 5), ("flow", 1), ("flow", 0)]


def test_priority_order_leaves_out_unknown_streams():
    c = blocked()
    assert c.priority_order([15, 99, 1, 3, 2]) == [3, 1, 15]
    assert c.priority_order([]) == []


def test_default_priorities_in_id_order():
    # Without signals every stream is (3, not incremental): id order, as before.
    streams = {1: None, 3: None, 5: None, 7: None}
    c = blocked(streams)
    c.feed(window_update(0, 100000))
    assert c.of("flow") == [("flow", s) for s in (1, 3, 5, 7)] + [("flow", 0)]


def test_without_on_flow_increase():
    # A subclass without the event: nothing to order; writing goes on as before.
    class Plain(raw.Connection):
        def on_writev(self, chunks):
            pass

    c = Plain(server=True)
    c.connection_made(True)
    c.data_received(PREFACE + settings(initial_window_size=1 << 20))
    c.data_received(headers(1, hpack.Encoder().encode(REQ), end_stream=True))
    c.write_head(1, 200, "", "", [], False)
    assert c.write_data(1, b"x" * 70000, False) == 65535
    c.data_received(window_update(0, 1000))
    assert c.write_data(1, b"x" * 4465, True) == 1000
    assert not c.closed


def test_client_request_bodies_in_order():
    # The client side schedules its request bodies the same way (the engine is role-agnostic).
    class ClientWriter(prio_class()):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.left = {}

        def on_flow_increase(self, stream):
            super().on_flow_increase(stream)
            if stream and self.left.get(stream):
                n = self.write_data(stream, b"y" * self.left[stream], True)
                self.left[stream] -= n

    c = make_client(cls=ClientWriter, peer_settings={"initial_window_size": 1 << 20})
    a = request(c, final=False, extra=[("priority", "u=6")])
    b = request(c, final=False, extra=[("priority", "u=1")])
    assert c.write_data(a, b"y" * 65535, False) == 65535
    c.left[a], c.left[b] = 3000, 3000
    assert c.write_data(b, b"y" * 3000, True) == 0
    assert c.write_data(a, b"y" * 3000, True) == 0
    c.take()
    c.feed(window_update(0, 4000))
    assert [(f.stream, len(f.payload)) for f in c.take(DATA)] == [(b, 3000), (a, 1000)]
    assert c.of("flow") == [("flow", b), ("flow", a), ("flow", 0)]



# ---------------------------------------------------------------------------------------------
# cno client and cno server, in memory

def test_cno_pair_signals_both_ways():
    class Server(CnoPeer):
        def on_priority_update(self, stream, urgency, incremental):
            self._ev(("prio", stream, urgency, incremental))

    c, s = cno_pair(server_cls=Server)
    assert c.remote_settings["no_rfc7540_priorities"] == 1
    st = c.next_stream
    c.write_head(st, 0, "GET", "/", [(":scheme", SCHEME), (":authority", AUTHORITY),
                                     ("priority", "u=4")], True)
    pump(c, s)
    assert (c.priority(st), s.priority(st)) == ((4, False), (4, False))
    c.write_priority(st, 0, True)
    pump(c, s)
    assert s.priority(st) == (0, True)
    assert [e for e in s.events if e[0] == "prio"] == [("prio", st, 0, True)]
    s.write_head(st, 200, "", "", [("priority", "i=?0")], False)
    pump(c, s)
    assert (c.priority(st), s.priority(st)) == ((0, False), (0, False))
