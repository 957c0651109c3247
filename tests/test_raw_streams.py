"""cno.raw.Connection against RFC 9113 section 5 (streams): ids, states, concurrency,
GOAWAY and shutdown, abuse budgets, trailers, and the connection after an error."""
import pytest

import cno.raw as raw
from cno import errors
from raw_frames import (
    CANCEL, CLIENT_HEADERS, DATA, ENHANCE_YOUR_CALM, GOAWAY, HEADERS, MAX_STREAM_ID, NO_ERROR,
    PROTOCOL_ERROR, PUSH_PROMISE, REFUSED_STREAM, REQ, RESP, RST_STREAM, SETTINGS,
    STREAM_CLOSED, assert_alive, continuation, data, expect_connection_error, expect_error,
    expect_stream_error, goaway, headers, make_client, make_server, merged_data, open_stream,
    ping, priority, push_promise, push_to_client, request, rst_stream, settings_ack,
    window_update,
)


def complete(c, stream):
    """Server side: the peer's request on ``stream`` (opened with END_STREAM) is answered."""
    c.write_head(stream, 200, "", "", [], True)


def serve_one(c, stream):
    open_stream(c, stream, end_stream=True)
    complete(c, stream)


# ---------------------------------------------------------------------------------------------
# 5.1.1 Stream identifiers

def test_client_ids_odd_and_increasing():
    # RFC 9113 5.1.1: "Streams initiated by a client MUST use odd-numbered stream identifiers".
    c = make_client()
    assert c.next_stream == 1
    ids = [request(c) for _ in range(3)]
    assert ids == [1, 3, 5]
    assert [f.stream for f in c.take(HEADERS)] == [1, 3, 5]
    assert c.next_stream == 7


def test_client_request_fires_stream_start():
    # docs/raw.md: on_stream_start fires for our own request too.
    c = make_client()
    request(c)
    assert ("start", 1) in c.events


def test_server_push_ids_even():
    # RFC 9113 5.1.1: "those initiated by the server MUST use even-numbered stream identifiers".
    c = make_server()
    open_stream(c, 1, end_stream=True)
    assert c.next_stream == 2
    assert c.write_push(1, "GET", "/a.css", CLIENT_HEADERS) == 2
    assert c.write_push(1, "GET", "/b.css", CLIENT_HEADERS) == 4
    assert c.next_stream == 6
    pp = c.take(PUSH_PROMISE)
    assert [(f.stream, f.promised_stream_id) for f in pp] == [(1, 2), (1, 4)]
    assert pp[0].headers[:2] == [(":method", "GET"), (":path", "/a.css")] or \
        dict(pp[0].headers)[":path"] == "/a.css"
    # docs/raw.md: the server sees the pushed request as a request of its own.
    assert ("start", 2) in c.events
    assert [e[:5] for e in c.of("head") if e[1] == 2] == [("head", 2, 0, "GET", "/a.css")]


def test_server_rejects_even_stream_from_client():
    # RFC 9113 5.1.1: a client-initiated stream with an even id is a connection error
    # PROTOCOL_ERROR.
    c = make_server()
    expect_connection_error(c, headers(2, c.block(REQ)), PROTOCOL_ERROR)


def test_client_rejects_headers_on_unopened_stream():
    # RFC 9113 5.1: a server cannot open a stream with HEADERS (idle stream, odd or even).
    c = make_client()
    expect_connection_error(c, headers(1, c.block(RESP)), PROTOCOL_ERROR)


def test_client_rejects_headers_on_unpromised_even_stream():
    c = make_client()
    request(c)
    expect_connection_error(c, headers(2, c.block(RESP)), PROTOCOL_ERROR)


def test_ids_monotonic():
    # RFC 9113 5.1.1: "The identifier of a newly established stream MUST be numerically
    # greater than all streams that the initiating endpoint has opened"; otherwise a
    # connection error PROTOCOL_ERROR.
    c = make_server()
    open_stream(c, 5)
    expect_connection_error(c, headers(3, c.block(REQ)), PROTOCOL_ERROR)


def test_ids_may_skip():
    # RFC 9113 5.1.1: ids need not be consecutive; skipped ones are closed implicitly.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    open_stream(c, 11, end_stream=True)
    assert [e[1] for e in c.of("head")] == [1, 11]


def test_push_promised_ids_monotonic():
    # RFC 9113 5.1.1 / 6.6: promised ids must increase too.
    c = make_client(push=True)
    request(c, final=False)
    push_to_client(c, 1, 4, status=False)
    block = c.block([(":method", "GET"), (":scheme", "https"), (":path", "/x"),
                     (":authority", "example.com")])
    expect_connection_error(c, push_promise(1, 2, block), PROTOCOL_ERROR)


# ---------------------------------------------------------------------------------------------
# 5.1 Stream states: closed streams

def test_headers_on_stream_closed_normally():
    # RFC 9113 5.1 (closed): "An endpoint that receives any frames after receiving a frame
    # with the END_STREAM flag set MUST treat that as a connection error of type
    # STREAM_CLOSED" (a stream error is accepted too).
    c = make_server()
    serve_one(c, 1)
    c.reset_log()
    expect_error(c, headers(1, c.block(REQ), end_stream=True), STREAM_CLOSED, stream=1)
    assert not c.of("head")


def test_data_on_stream_closed_normally():
    # RFC 9113 5.1 (closed) / 6.1: DATA after END_STREAM: STREAM_CLOSED.
    c = make_server()
    serve_one(c, 1)
    c.reset_log()
    expect_error(c, data(1, b"late"), STREAM_CLOSED, stream=1)
    assert not c.of("data")


def test_data_on_half_closed_remote_stream():
    # RFC 9113 5.1 (half-closed (remote)): frames other than WINDOW_UPDATE, PRIORITY and
    # RST_STREAM are a stream error STREAM_CLOSED.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.reset_log()
    expect_error(c, data(1, b"late"), STREAM_CLOSED, stream=1)
    assert not c.of("data")


def test_window_update_and_rst_on_closed_stream_ignored():
    # RFC 9113 5.1 (closed): "Endpoints MUST ignore WINDOW_UPDATE or RST_STREAM frames
    # received in this state".
    c = make_server()
    serve_one(c, 1)
    c.reset_log()
    c.feed(window_update(1, 100), rst_stream(1, CANCEL), priority(1, 0, 16))
    assert not c.take()
    assert not [e for e in c.events if e[0] != "flow"]
    assert_alive(c)


def test_late_frames_on_stream_closed_long_ago_ignored():
    # RFC 9113 5.1 (closed), known libcno defect: only the last 10 closed streams were
    # remembered, so a late WINDOW_UPDATE on an old stream killed the connection.
    c = make_server()
    serve_one(c, 1)
    for sid in range(3, 2003, 2):  # 1000 more streams
        serve_one(c, sid)
    c.reset_log()
    c.feed(window_update(1, 100), rst_stream(1, CANCEL), window_update(999, 5),
           rst_stream(1001, NO_ERROR))
    assert not c.take()
    assert_alive(c)


def test_late_frames_when_response_finished_first():
    # RFC 9113 5.1, known libcno defect: a stream whose response ended before the request
    # (our side closed first) was not remembered, so its late frames were fatal.
    c = make_server()
    open_stream(c, 1)
    c.write_head(1, 200, "", "", [], True)
    c.feed(data(1, b"body", end_stream=True))
    c.reset_log()
    c.feed(window_update(1, 10), rst_stream(1, CANCEL))
    assert not c.take()
    assert_alive(c)


def test_frames_after_our_rst_stream_ignored():
    # RFC 9113 5.1 (closed): "An endpoint MUST ignore frames that it receives on closed
    # streams after it has sent a RST_STREAM frame." Their field blocks are still decoded
    # (RFC 9113 4.3), so the HPACK state stays in step.
    c = make_server()
    open_stream(c, 1)
    c.write_reset(1, CANCEL)
    [rst] = c.take(RST_STREAM)
    assert (rst.stream, rst.error_code) == (1, CANCEL)
    assert ("end", 1, CANCEL, raw.CNO_LOCAL) in c.events
    c.reset_log()
    c.feed(data(1, b"in flight" * 100), headers(1, c.block([("x-trailer", "indexed-value")]),
                                                 end_stream=True),
           window_update(1, 5), rst_stream(1, CANCEL), data(1, b"more"))
    assert not [f for f in c.take() if f.type in (RST_STREAM, GOAWAY)]
    assert not [e for e in c.events if e[0] in ("data", "tail", "head", "end")]
    # The trailer block indexed a field; reusing it must decode to the same value.
    open_stream(c, 3, REQ + [("x-trailer", "indexed-value")], end_stream=True)
    assert [e for e in c.of("head") if e[1] == 3][0][5][-1] == ("x-trailer", "indexed-value")


def test_write_reset_unknown_stream_is_noop():
    # docs/raw.md: write_reset on an unknown or closed stream is a no-op.
    c = make_server()
    serve_one(c, 1)
    c.reset_log()
    c.write_reset(1, CANCEL)
    c.write_reset(99, CANCEL)
    assert not c.take()


@pytest.mark.parametrize("make_frame", [
    lambda: data(1, b"x"), lambda: window_update(1, 1), lambda: rst_stream(1, CANCEL)],
    ids=["DATA", "WINDOW_UPDATE", "RST_STREAM"])
def test_frames_on_idle_stream(make_frame):
    # RFC 9113 5.1 (idle): "Receiving any frame other than HEADERS or PRIORITY on a stream in
    # this state MUST be treated as a connection error of type PROTOCOL_ERROR."
    c = make_server()
    expect_connection_error(c, make_frame(), PROTOCOL_ERROR)


def test_data_on_idle_stream_above_open_one():
    # RFC 9113 5.1 (idle): stream 3 is idle while only stream 1 was opened.
    c = make_server()
    open_stream(c, 1)
    expect_connection_error(c, data(3, b"x"), PROTOCOL_ERROR)


def test_rst_stream_from_peer_ends_stream():
    # RFC 9113 6.4: RST_STREAM closes the stream; on_stream_end(code, CNO_REMOTE); we do
    # not answer it with RST_STREAM (RFC 9113 5.4.2).
    c = make_server()
    open_stream(c, 1)
    c.reset_log()
    c.feed(rst_stream(1, CANCEL))
    assert c.events == [("end", 1, CANCEL, raw.CNO_REMOTE)]
    assert not c.take()
    with pytest.raises(errors.InvalidStream):
        c.write_head(1, 200, "", "", [], True)


def test_normal_stream_end_event():
    # docs/raw.md: a stream that ends normally fires on_stream_end(stream, 0, ...) once.
    c = make_server()
    serve_one(c, 1)
    ends = c.of("end")
    assert len(ends) == 1 and ends[0][:3] == ("end", 1, 0)
    with pytest.raises(errors.InvalidStream):
        c.write_data(1, b"x", True)


def test_write_to_unknown_stream():
    # docs/raw.md: InvalidStream for a write to an unknown stream.
    c = make_server()
    with pytest.raises(errors.InvalidStream):
        c.write_head(7, 200, "", "", [], True)
    with pytest.raises(errors.InvalidStream):
        c.write_data(7, b"x", True)


def test_write_after_own_end_stream():
    # docs/raw.md: InvalidStream for a stream closed for writing.
    c = make_server()
    open_stream(c, 1)
    c.write_head(1, 200, "", "", [], True)
    with pytest.raises(errors.InvalidStream):
        c.write_data(1, b"x", False)


# ---------------------------------------------------------------------------------------------
# 5.1.2 Stream concurrency

def test_peer_over_our_limit_refused():
    # RFC 9113 5.1.2: a HEADERS that exceeds our advertised SETTINGS_MAX_CONCURRENT_STREAMS is
    # a stream error (REFUSED_STREAM per docs/raw.md); the block is still decoded.
    c = make_server(local={"max_concurrent_streams": 2})
    open_stream(c, 1)
    open_stream(c, 3)
    c.reset_log()
    expect_stream_error(c, headers(5, c.block(REQ + [("x-new", "v5")])), 5, REFUSED_STREAM)
    assert not c.of("head")
    assert_alive(c)
    c.feed(data(1, b"", end_stream=True))
    complete(c, 1)
    open_stream(c, 7, REQ + [("x-new", "v5")])
    assert [e[5][-1] for e in c.of("head") if e[1] == 7] == [("x-new", "v5")]


def test_default_limit_is_100():
    # docs/raw.md: our default max_concurrent_streams is 100.
    c = make_server()
    for sid in range(1, 201, 2):
        open_stream(c, sid)
    c.reset_log()
    expect_stream_error(c, headers(201, c.block(REQ)), 201, REFUSED_STREAM)


def test_our_write_head_beyond_peer_limit():
    # RFC 9113 5.1.2: "Endpoints MUST NOT exceed the limit set by their peer";
    # docs/raw.md: write_head raises WouldBlock.
    c = make_client(peer_settings={"max_concurrent_streams": 1})
    assert request(c, final=False) == 1
    c.take()
    with pytest.raises(errors.WouldBlock):
        c.write_head(3, 0, "GET", "/", CLIENT_HEADERS, True)
    assert not c.take()
    assert c.next_stream == 3
    c.write_data(1, b"", True)
    c.feed(headers(1, c.block(RESP), end_stream=True))
    assert request(c) == 3


def test_settings_apply_only_when_acked_before():
    # RFC 9113 6.5.3: our new SETTINGS_MAX_CONCURRENT_STREAMS binds the peer only once it has
    # acknowledged it; before that, 2 streams are legal (known libcno defect: applied at once).
    c = make_server()
    c.update_settings(max_concurrent_streams=1)
    assert c.local_settings["max_concurrent_streams"] == 1
    [s] = c.take(SETTINGS)
    assert dict(s.settings) == {3: 1}
    open_stream(c, 1)
    open_stream(c, 3)
    assert [e[1] for e in c.of("head")] == [1, 3]
    assert not c.take(RST_STREAM)


def test_raised_limit_applies_only_when_acked():
    # RFC 9113 6.5.3: a raised limit binds us once the peer acknowledged it; until then the
    # old one holds (the peer cannot know of the new one either).
    c = make_server(local={"max_concurrent_streams": 1})
    c.update_settings(max_concurrent_streams=2)
    c.take()
    open_stream(c, 1)
    c.reset_log()
    expect_stream_error(c, headers(3, c.block(REQ)), 3, REFUSED_STREAM)
    c.feed(settings_ack())
    open_stream(c, 5)
    assert [e[1] for e in c.of("head")] == [5]


@pytest.mark.parametrize("ours", [2, 100, 300])
def test_limit_holds_before_the_peer_ever_acks(ours):
    # issue 10 item 1: a client that sends its preface and never acknowledges our SETTINGS
    # opened 740,000 streams. Our own limit holds from the first frame: the stream past it
    # is refused with REFUSED_STREAM (RFC 9113 8.7: never processed, safe to retry).
    c = make_server(ack=False, local={"max_concurrent_streams": ours})
    for sid in range(1, 2 * ours, 2):
        open_stream(c, sid)
    c.reset_log()
    expect_stream_error(c, headers(2 * ours + 1, c.block(REQ)), 2 * ours + 1,
                        REFUSED_STREAM)


def test_settings_apply_only_when_acked_after():
    # RFC 9113 6.5.3: once acknowledged, the second concurrent stream is refused.
    c = make_server()
    c.update_settings(max_concurrent_streams=1)
    c.feed(settings_ack())
    open_stream(c, 1)
    c.take()
    expect_stream_error(c, headers(3, c.block(REQ)), 3, REFUSED_STREAM)
    assert [e[1] for e in c.of("head")] == [1]


def test_settings_ack_does_not_fire_on_settings():
    # docs/raw.md: on_settings does not fire for our own settings.
    c = make_server()
    c.update_settings(max_concurrent_streams=5)
    c.feed(settings_ack())
    assert not c.of("settings")


# ---------------------------------------------------------------------------------------------
# 6.8 GOAWAY and shutdown

def test_client_accepts_goaway_last_stream_0():
    # RFC 9113 6.8: last-stream-id 0 is legal ("no streams processed"); known libcno
    # defect: a client rejected it. Our stream 1 was not processed: it ends, then on_close.
    c = make_client()
    request(c)
    c.reset_log()
    c.feed(goaway(0, NO_ERROR))
    assert [e[1] for e in c.of("end")] == [1]
    assert ("close",) in c.events
    assert not [f for f in c.take(GOAWAY) if f.error_code != NO_ERROR]
    with pytest.raises(errors.ConnectionClosed):
        request(c)


def test_client_goaway_lets_lower_streams_finish():
    # RFC 9113 6.8: streams up to last-stream-id may still complete; higher ones were not
    # processed and end now.
    c = make_client()
    for _ in range(3):
        request(c)
    c.reset_log()
    c.feed(goaway(3, NO_ERROR))
    assert [e[1] for e in c.of("end")] == [5]
    assert ("close",) not in c.events
    with pytest.raises(errors.ConnectionClosed):
        request(c)
    c.feed(headers(1, c.block(RESP), end_stream=True))
    assert ("close",) not in c.events
    c.feed(headers(3, c.block(RESP)), data(3, b"body", end_stream=True))
    assert merged_data(c.events, 3) == b"body"
    assert c.events[-1] == ("close",)
    assert c.closed


def test_goaway_last_stream_id_must_not_increase():
    # RFC 9113 6.8: "Endpoints MUST NOT increase the value they send in the last stream
    # identifier".
    c = make_client()
    for _ in range(3):
        request(c, final=False)
    c.feed(goaway(3, NO_ERROR))
    expect_connection_error(c, goaway(5, NO_ERROR), PROTOCOL_ERROR)


def test_server_graceful_shutdown():
    # RFC 9113 6.8 / docs/raw.md shutdown(): GOAWAY with the last peer stream id; streams
    # below it finish; new ones are not processed; on_close once none remain.
    c = make_server()
    open_stream(c, 1)
    open_stream(c, 3, end_stream=True)
    c.reset_log()
    c.shutdown()
    [g] = c.take(GOAWAY)
    assert (g.last_stream_id, g.error_code) == (3, NO_ERROR)
    assert not c.closed and ("close",) not in c.events
    c.feed(headers(5, c.block(REQ), end_stream=True))  # above last-stream-id: not processed
    assert not [e for e in c.of("head") if e[1] == 5]
    c.feed(data(1, b"rest", end_stream=True))
    assert merged_data(c.events, 1) == b"rest"
    complete(c, 3)
    assert ("close",) not in c.events
    complete(c, 1)
    assert ("close",) in c.events
    assert c.closed


def test_server_shutdown_idle_closes_at_once():
    # docs/raw.md shutdown(): with no streams, on_close at once.
    c = make_server()
    c.shutdown()
    assert [g.error_code for g in c.take(GOAWAY)] == [NO_ERROR]
    assert ("close",) in c.events
    assert c.closed


def test_goaway_with_error_from_peer():
    # RFC 9113 6.8 / 5.4.1: a GOAWAY with an error code ends the connection; we must not
    # answer it with a GOAWAY blaming the peer.
    c = make_client()
    request(c)
    c.reset_log()
    try:
        c.feed(goaway(0, PROTOCOL_ERROR, b"you did it"))
    except errors.ConnectionClosed:
        pass
    except errors.ProtocolError as e:
        assert e.error_code == PROTOCOL_ERROR
    assert not [f for f in c.take(GOAWAY) if f.error_code != NO_ERROR]
    with pytest.raises(errors.ConnectionClosed):
        request(c)


def test_push_refused_after_goaway():
    # docs/raw.md write_push: returns 0 once a GOAWAY arrived.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.feed(goaway(0))
    assert c.write_push(1, "GET", "/x", CLIENT_HEADERS) == 0
    assert not c.take(PUSH_PROMISE)


def test_push_refused_when_disabled_by_peer():
    # RFC 9113 6.5.2 / docs/raw.md write_push: ENABLE_PUSH=0 from the peer means no pushes.
    c = make_server(peer_settings={"enable_push": 0})
    open_stream(c, 1, end_stream=True)
    assert c.write_push(1, "GET", "/x", CLIENT_HEADERS) == 0
    assert not c.take(PUSH_PROMISE)


def test_connection_lost_ends_open_streams():
    # docs/raw.md connection_lost(): every open stream ends with CANCEL/LOCAL, then on_close.
    c = make_server()
    open_stream(c, 1)
    open_stream(c, 3)
    c.reset_log()
    c.connection_lost()
    assert sorted(e[1:] for e in c.of("end")) == [(1, CANCEL, raw.CNO_LOCAL),
                                                  (3, CANCEL, raw.CNO_LOCAL)]
    assert c.events[-1] == ("close",)
    assert c.closed


# ---------------------------------------------------------------------------------------------
# Stream-id exhaustion (RFC 9113 5.1.1)

def test_next_stream_near_the_end():
    # RFC 9113 5.1.1: 2^31-1 is the last client id.
    c = make_client()
    c.write_head(MAX_STREAM_ID - 2, 0, "GET", "/", CLIENT_HEADERS, True)
    assert c.next_stream == MAX_STREAM_ID


def test_client_stream_id_exhaustion():
    # RFC 9113 5.1.1: "Stream identifiers cannot be reused"; a client out of ids cannot open
    # another stream: a clean error, not an overflow.
    c = make_client()
    c.write_head(MAX_STREAM_ID, 0, "GET", "/", CLIENT_HEADERS, True)
    assert [f.stream for f in c.take(HEADERS)] == [MAX_STREAM_ID]
    with pytest.raises((errors.ConnectionClosed, errors.WouldBlock)):
        c.write_head(c.next_stream, 0, "GET", "/", CLIENT_HEADERS, True)
    # the last stream still completes
    c.feed(headers(MAX_STREAM_ID, c.block(RESP), end_stream=True))
    assert [e[1] for e in c.of("head")] == [MAX_STREAM_ID]


def test_client_stream_id_exhaustion_sends_goaway():
    # RFC 9113 5.1.1: the connection cannot open streams any more; it says so with GOAWAY.
    c = make_client()
    c.write_head(MAX_STREAM_ID, 0, "GET", "/", CLIENT_HEADERS, True)
    try:
        c.write_head(c.next_stream, 0, "GET", "/", CLIENT_HEADERS, True)
    except (errors.ConnectionClosed, errors.WouldBlock):
        pass
    assert [g.error_code for g in c.take(GOAWAY)] == [NO_ERROR]


def test_server_at_max_stream_id():
    # RFC 9113 5.1.1: the peer may use 2^31-1; after it, no new stream is possible.
    c = make_server()
    open_stream(c, MAX_STREAM_ID, end_stream=True)
    assert [e[1] for e in c.of("head")] == [MAX_STREAM_ID]
    complete(c, MAX_STREAM_ID)
    assert ("end", MAX_STREAM_ID, 0) in [e[:3] for e in c.of("end")]
    c.reset_log()
    # A lower id is not new (PROTOCOL_ERROR, 5.1.1) or names a closed stream (STREAM_CLOSED).
    expect_error(c, headers(MAX_STREAM_ID - 2, c.block(REQ)), {PROTOCOL_ERROR, STREAM_CLOSED},
                 stream=MAX_STREAM_ID - 2)
    assert not c.of("head")


# ---------------------------------------------------------------------------------------------
# Abuse budgets (docs/raw.md limits)

def test_rapid_reset_past_budget():
    # docs/raw.md reset_budget (CVE-2023-44487): streams opened and reset before they
    # complete, past the budget, get GOAWAY ENHANCE_YOUR_CALM.
    c = make_server(reset_budget=10)
    for i in range(10):
        c.feed(headers(2 * i + 1, c.block(REQ)), rst_stream(2 * i + 1, CANCEL))
    assert not c.take(GOAWAY)
    with pytest.raises(errors.EnhanceYourCalm):
        for i in range(10, 12):
            c.feed(headers(2 * i + 1, c.block(REQ)), rst_stream(2 * i + 1, CANCEL))
    [g] = c.take(GOAWAY)
    assert g.error_code == ENHANCE_YOUR_CALM
    assert c.closed


def test_rapid_reset_default_budget():
    # docs/raw.md: the default budget is DEFAULT_RESET_BUDGET (1000).
    c = make_server()
    assert c.reset_budget == raw.DEFAULT_RESET_BUDGET == 1000
    w = b"".join(headers(2 * i + 1, c.block(REQ)) + rst_stream(2 * i + 1, CANCEL)
                 for i in range(1002))
    with pytest.raises(errors.EnhanceYourCalm):
        c.feed(w)


def test_completed_streams_earn_reset_budget_back():
    # docs/raw.md: each stream that completes normally earns one back.
    c = make_server(reset_budget=10)
    sid = 1
    for _ in range(50):
        c.feed(headers(sid, c.block(REQ)), rst_stream(sid, CANCEL))
        serve_one(c, sid + 2)
        sid += 4
    assert not c.take(GOAWAY)
    assert not c.closed


def test_empty_data_flood():
    # docs/raw.md empty_frame_budget: DATA frames that carry nothing and do not end the
    # stream, past the budget: GOAWAY ENHANCE_YOUR_CALM.
    c = make_server(empty_frame_budget=10)
    open_stream(c, 1)
    with pytest.raises(errors.EnhanceYourCalm):
        for _ in range(12):
            c.feed(data(1, b""))
    assert [g.error_code for g in c.take(GOAWAY)] == [ENHANCE_YOUR_CALM]


def test_empty_data_within_budget_and_earned_back():
    # docs/raw.md: each frame that carries something earns one back; END_STREAM frames
    # do not count.
    c = make_server(empty_frame_budget=10)
    open_stream(c, 1)
    for _ in range(100):
        c.feed(data(1, b""), data(1, b"x"))
    c.feed(data(1, b"", end_stream=True))
    assert ("tail", 1, None) in c.events
    assert not c.take(GOAWAY)


def test_empty_continuation_flood():
    # docs/raw.md empty_frame_budget: HEADERS/CONTINUATION that carry nothing count too
    # (default budget 100; max_continuations raised out of the way).
    c = make_server(max_continuations=10000)
    w = headers(1, b"", end_headers=False) + continuation(1, b"", end_headers=False) * 150
    expect_connection_error(c, w, ENHANCE_YOUR_CALM)


def test_made_you_reset_past_stream_error_budget():
    # docs/raw.md stream_error_budget (MadeYouReset, CVE-2025-8671): frames that make us
    # reset a stream (here WINDOW_UPDATE 0 on an open stream, RFC 9113 6.9: a stream
    # error) are counted apart from the peer's own RST_STREAMs; past the budget, GOAWAY
    # ENHANCE_YOUR_CALM.
    c = make_server(stream_error_budget=10)
    for i in range(10):
        open_stream(c, 2 * i + 1)
        c.feed(window_update(2 * i + 1, 0))
    assert [r.error_code for r in c.take(RST_STREAM)] == [PROTOCOL_ERROR] * 10
    assert c.stats["stream_errors"] == 10 and c.stats["peer_resets"] == 0
    open_stream(c, 21)
    expect_connection_error(c, window_update(21, 0), ENHANCE_YOUR_CALM)


def test_self_dependent_priority_flood_spends_stream_error_budget():
    # RFC 9113 5.3.1: a stream depending on itself is a stream error; a flood of such
    # 14-byte PRIORITY frames, each provoking an RST_STREAM, ends at the budget.
    c = make_server(stream_error_budget=100)
    w = b"".join(priority(2 * i + 1, depends_on=2 * i + 1) for i in range(101))
    expect_connection_error(c, w, ENHANCE_YOUR_CALM)
    assert c.stats["stream_errors"] == 101


def test_completed_streams_earn_stream_error_budget_back():
    c = make_server(stream_error_budget=10)
    sid = 1
    for _ in range(50):
        c.feed(priority(sid, depends_on=sid))
        serve_one(c, sid + 2)
        sid += 4
    assert not c.take(GOAWAY)
    assert c.stats["stream_errors"] == 50


def test_stream_errors_count_as_unread_replies_while_writing_paused():
    # docs/raw.md control_frame_budget: a RST_STREAM we must send is a reply; while the
    # peer does not read (writing_paused) they pile up and are bounded like PING ACKs.
    c = make_server(control_frame_budget=20)
    c.writing_paused = True
    w = b"".join(headers(2 * i + 1, b"", end_stream=True) for i in range(30))
    expect_connection_error(c, w, ENHANCE_YOUR_CALM)
    assert c.stats["unread_replies"] == 21


def test_user_resets_spend_no_budget():
    # Only resets the peer causes count: the application's own write_reset does not.
    c = make_server(stream_error_budget=2)
    for i in range(5):
        open_stream(c, 2 * i + 1)
        c.write_reset(2 * i + 1, CANCEL)
    assert c.stats["stream_errors"] == 0
    assert_alive(c)


def test_header_count_limit_h2():
    # docs/raw.md max_header_count applies to HTTP/2 header lists too: many cheap indexed
    # references to one dynamic-table entry (the "HTTP/2 bomb", CVE-2026-49975) are small
    # on the wire and large in memory; past the count the request is refused (as past
    # max_header_list_size) and nothing of it is delivered.
    c = make_server(max_header_count=20)
    big = REQ + [("x-a", "v")]
    block = c.block(big)                       # x-a goes into the table (index 62)
    c.feed(headers(1, block, end_stream=True))
    assert c.of("head")
    c.reset_log()
    refs = c.block(REQ) + b"\xbe" * 30        # 30 more fields, one byte each
    expect_stream_error(c, headers(3, refs, end_stream=True), 3, REFUSED_STREAM)
    assert not c.of("head")
    c.feed(headers(5, c.block(REQ) + b"\xbe" * 10, end_stream=True))   # under the limit
    [head] = c.of("head")
    assert head[-1].count(("x-a", "v")) == 10


def test_stats_counts():
    c = make_server()
    assert c.stats == {"peer_resets": 0, "stream_errors": 0, "empty_frames": 0,
                       "unread_replies": 0, "buffered_input": 0}
    open_stream(c, 1)
    c.feed(rst_stream(1, CANCEL), data(3, b"")[:5])
    st = c.stats
    assert st["peer_resets"] == 1 and st["buffered_input"] == 5 == c.buffered_input


def test_settings_unacked():
    c = make_server(ack=False)
    assert c.settings_unacked == 1
    c.feed(settings_ack())
    assert c.settings_unacked == 0


def test_default_budgets():
    c = make_server()
    assert c.empty_frame_budget == raw.DEFAULT_EMPTY_FRAME_BUDGET == 100
    assert c.control_frame_budget == raw.DEFAULT_CONTROL_FRAME_BUDGET == 10000
    assert c.stream_error_budget == raw.DEFAULT_STREAM_ERROR_BUDGET == 1000
    assert c.max_continuations == raw.DEFAULT_MAX_CONTINUATIONS == 64
    assert c.max_header_block_size == raw.DEFAULT_MAX_HEADER_BLOCK_SIZE == 262144
    assert c.writing_paused is False


# ---------------------------------------------------------------------------------------------
# 8.1 Trailers

def test_request_trailers():
    # RFC 9113 8.1: a trailing HEADERS with END_STREAM after DATA carries trailers;
    # docs/raw.md: on_message_tail(stream, list).
    c = make_server()
    open_stream(c, 1)
    c.feed(data(1, b"abc"), headers(1, c.block([("x-checksum", "123"), ("x-more", "y")]),
                                    end_stream=True))
    assert merged_data(c.events, 1) == b"abc"
    assert c.of("tail") == [("tail", 1, [("x-checksum", "123"), ("x-more", "y")])]


def test_trailers_without_data():
    # RFC 9113 8.1: trailers may directly follow the header section.
    c = make_server()
    open_stream(c, 1)
    c.feed(headers(1, c.block([("x-t", "1")]), end_stream=True))
    assert c.of("tail") == [("tail", 1, [("x-t", "1")])]


def test_no_trailers_is_none():
    # docs/raw.md: trailers is None when there were none.
    c = make_server()
    open_stream(c, 1)
    c.feed(data(1, b"abc", end_stream=True))
    assert c.of("tail") == [("tail", 1, None)]


def test_response_trailers():
    c = make_client()
    request(c)
    c.feed(headers(1, c.block(RESP)), data(1, b"body"),
           headers(1, c.block([("grpc-status", "0")]), end_stream=True))
    assert c.of("tail") == [("tail", 1, [("grpc-status", "0")])]


def test_trailers_without_end_stream():
    # RFC 9113 8.1: a HEADERS without END_STREAM after the header section is malformed.
    c = make_server()
    open_stream(c, 1)
    c.feed(data(1, b"abc"))
    expect_error(c, headers(1, c.block([("x-t", "1")])), PROTOCOL_ERROR, stream=1)
    assert not c.of("tail")


def test_write_tail_sends_trailers():
    # docs/raw.md write_tail: a HEADERS with END_STREAM.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.write_head(1, 200, "", "", [], False)
    c.write_data(1, b"body", False)
    c.take()
    c.write_tail(1, [("x-checksum", "abc")])
    [h] = c.take()
    assert h.type == HEADERS and h.flags & 0x1 and h.headers == [("x-checksum", "abc")]


@pytest.mark.parametrize("trailers", [None, []])
def test_write_tail_without_trailers(trailers):
    # docs/raw.md write_tail: just END_STREAM when trailers is None or empty.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.write_head(1, 200, "", "", [], False)
    c.take()
    c.write_tail(1, trailers)
    [f] = c.take()
    assert f.type == DATA and f.flags & 0x1 and f.payload == b""


# ---------------------------------------------------------------------------------------------
# After a connection error (RFC 9113 5.4.1, docs/raw.md errors)

def broken_server():
    c = make_server()
    open_stream(c, 1)
    with pytest.raises(errors.ProtocolError):
        c.feed(data(0, b"x"))
    c.reset_log()
    return c


def test_data_received_after_error_raises():
    c = broken_server()
    with pytest.raises((errors.ConnectionClosed, errors.ProtocolError)):
        c.data_received(ping())
    assert not c.take()
    assert c.closed


@pytest.mark.parametrize("call", [
    lambda c: c.write_head(1, 200, "", "", [], True),
    lambda c: c.write_data(1, b"x", True),
    lambda c: c.write_tail(1, None),
    lambda c: c.write_ping(b"12345678"),
    lambda c: c.write_frame(0xA, 0, 0, b""),
    lambda c: c.write_push(1, "GET", "/", CLIENT_HEADERS),
    lambda c: c.open_flow(1, 10),
    lambda c: c.update_settings(max_concurrent_streams=5),
    lambda c: c.shutdown(),
], ids=["write_head", "write_data", "write_tail", "write_ping", "write_frame", "write_push",
        "open_flow", "update_settings", "shutdown"])
def test_calls_after_error_raise(call):
    # docs/raw.md: ConnectionClosed for any call on a closed connection.
    c = broken_server()
    with pytest.raises((errors.ConnectionClosed, errors.ProtocolError)):
        call(c)
    assert not c.take()


def test_calls_after_connection_lost_raise():
    # docs/raw.md: closed after connection_lost; ConnectionClosed for any call.
    c = make_server()
    open_stream(c, 1)
    c.connection_lost()
    with pytest.raises(errors.ConnectionClosed):
        c.write_head(1, 200, "", "", [], True)
    with pytest.raises(errors.ConnectionClosed):
        c.data_received(ping())
