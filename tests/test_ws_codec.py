"""cno._ws.Codec against RFC 6455 (section by section) and RFC 7692 (permessage-deflate).

Frames are built by hand (``frame()`` below) so that every rule is tested from the wire,
independently of the codec's own encoder; the send side is tested by parsing its output
back, byte for byte where the RFC gives the bytes.
"""
import os
import struct
import zlib

import pytest

from cno._ws import (
    DEFAULT_MAX_MESSAGE_SIZE, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Codec,
)
from cno.errors import UsageError, WebSocketError

KEY = bytes.fromhex("37fa213d")   # the mask key of RFC 6455 5.7's examples


def mask(data, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(opcode, payload=b"", fin=True, key=KEY, rsv=0, length=None):
    """A frame as RFC 6455 5.2 draws it; key None: unmasked. ``length`` overrides the
    announced payload length (the encoding is still the minimal one for it)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    m = 0x80 if key is not None else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if key is None:
        return head + payload
    return head + key + mask(payload, key)


def server(**kw):
    return Codec(False, **kw)


def client(**kw):
    return Codec(True, **kw)


def fails(codec, data, code):
    with pytest.raises(WebSocketError) as e:
        codec.feed(data)
    assert e.value.code == code, e.value.reason
    # The codec stays failed: any later input raises the same error.
    with pytest.raises(WebSocketError) as again:
        codec.feed(frame(OP_PING, key=None if codec.client else KEY))
    assert again.value.code == code
    return e.value


# ----------------------------------------------------------------------------------------
# 5.2 Base framing

class TestBaseFraming:
    @pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 70000])
    def test_length_encodings(self, n):
        payload = os.urandom(n)
        assert server().feed(frame(OP_BINARY, payload)) == [(OP_BINARY, payload)]
        assert client().feed(frame(OP_BINARY, payload, key=None)) == [(OP_BINARY, payload)]

    @pytest.mark.parametrize("n, head", [(125, 2), (126, 4), (65535, 4), (65536, 10)])
    def test_send_uses_the_minimal_length_encoding(self, n, head):
        out = server().message(b"x" * n)
        assert len(out) == head + n
        assert out[1] & 0x7F == (n if head == 2 else 126 if head == 4 else 127)
        assert out == frame(OP_BINARY, b"x" * n, key=None)

    def test_non_minimal_length_is_accepted(self):
        # A 16-bit length for 5 bytes: RFC 6455 5.2 asks the sender for the minimal
        # encoding; the reader is liberal, as websockets is (wsproto refuses it).
        data = bytes([0x82, 0x80 | 126, 0, 5]) + KEY + mask(b"hello", KEY)
        assert server().feed(data) == [(OP_BINARY, b"hello")]

    def test_64_bit_length_with_the_top_bit_set(self):
        data = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + KEY
        fails(server(), data, 1002)

    @pytest.mark.parametrize("rsv", [1, 2, 4, 3, 7])
    def test_reserved_bits_without_extension(self, rsv):
        fails(server(), frame(OP_TEXT, b"x", rsv=rsv), 1002)

    @pytest.mark.parametrize("rsv", [1, 2, 3, 5, 6])
    def test_rsv2_rsv3_with_deflate(self, rsv):
        # RFC 7692 defines RSV1 only (rsv=4 here); RSV2 is 2, RSV3 is 1.
        fails(server(deflate=True), frame(OP_TEXT, b"x", rsv=rsv), 1002)

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_unknown_opcodes(self, opcode):
        fails(server(), frame(opcode, b""), 1002)

    def test_opcode_constants(self):
        assert (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG) == (0, 1, 2, 8, 9, 10)
        assert DEFAULT_MAX_MESSAGE_SIZE == 16 * 1024 * 1024

    def test_several_frames_in_one_feed(self):
        data = frame(OP_TEXT, b"a") + frame(OP_BINARY, b"b") + frame(OP_PING, b"c")
        assert server().feed(data) == [(OP_TEXT, "a"), (OP_BINARY, b"b"), (OP_PING, b"c")]

    def test_header_split_byte_by_byte(self):
        c = server()
        data = frame(OP_BINARY, b"z" * 300) + frame(OP_TEXT, b"ok")
        events = []
        for i in range(len(data)):
            events += c.feed(data[i:i + 1])
        assert events == [(OP_BINARY, b"z" * 300), (OP_TEXT, "ok")]

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_any_buffer(self, kind):
        assert server().feed(kind(frame(OP_BINARY, b"abc"))) == [(OP_BINARY, b"abc")]

    def test_input_is_not_kept(self):
        # The caller may reuse its buffer after feed(): only an incomplete tail is copied.
        c = server()
        buf = bytearray(frame(OP_BINARY, b"0123456789"))
        assert c.feed(buf[:9]) == []
        rest = bytearray(buf[9:])
        buf[:] = b"\xff" * len(buf)
        assert c.feed(rest) == [(OP_BINARY, b"0123456789")]

    def test_read_only_attributes(self):
        c = client(deflate=True)
        assert (c.client, c.deflate, c.close_sent, c.close_received) == (True, True, False, False)
        with pytest.raises(AttributeError):
            c.client = False
        with pytest.raises(AttributeError):
            c.close_sent = True


# ----------------------------------------------------------------------------------------
# 5.3 Masking, with the example frames of 5.7 verbatim

class TestMaskingAndExamples:
    def test_unmasked_hello(self):
        data = bytes.fromhex("810548656c6c6f")
        assert client().feed(data) == [(OP_TEXT, "Hello")]
        assert server().message("Hello") == data

    def test_masked_hello(self):
        assert server().feed(bytes.fromhex("818537fa213d7f9f4d5158")) == [(OP_TEXT, "Hello")]

    def test_fragmented_unmasked_hello(self):
        c = client()
        assert c.feed(bytes.fromhex("010348656c")) == []
        assert c.feed(bytes.fromhex("80026c6f")) == [(OP_TEXT, "Hello")]
        s = server()
        assert s.message("Hel", fin=False) == bytes.fromhex("010348656c")
        assert s.message("lo") == bytes.fromhex("80026c6f")

    def test_ping_and_masked_pong(self):
        assert client().feed(bytes.fromhex("890548656c6c6f")) == [(OP_PING, b"Hello")]
        assert server().feed(bytes.fromhex("8a8537fa213d7f9f4d5158")) == [(OP_PONG, b"Hello")]
        assert server().ping(b"Hello") == bytes.fromhex("890548656c6c6f")

    def test_256_bytes_binary(self):
        head = bytes.fromhex("827e0100")
        payload = os.urandom(256)
        assert client().feed(head + payload) == [(OP_BINARY, payload)]
        assert server().message(payload)[:4] == head

    def test_64k_binary(self):
        head = bytes.fromhex("827f0000000000010000")
        payload = os.urandom(65536)
        assert client().feed(head + payload) == [(OP_BINARY, payload)]
        assert server().message(payload)[:10] == head

    def test_server_rejects_unmasked_frames(self):
        fails(server(), frame(OP_TEXT, b"hi", key=None), 1002)

    def test_client_rejects_masked_frames(self):
        fails(client(), frame(OP_TEXT, b"hi"), 1002)

    @pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 1000, 1027])
    def test_mask_phase_across_splits(self, n):
        # The 64-bit unmasking must keep the key's phase at every split offset.
        payload = os.urandom(n)
        data = frame(OP_BINARY, payload, key=b"\x01\x82\x43\xc4")
        for cut in sorted({0, 1, 5, 7, 9, 11, len(data) // 2, len(data) - 1}):
            if cut <= len(data):
                c = server()
                assert c.feed(data[:cut]) + c.feed(data[cut:]) == [(OP_BINARY, payload)]

    def test_client_masks_with_a_fresh_key_per_frame(self):
        c = client()
        frames = [c.message(b"\x00" * 8) for _ in range(300)]   # past one entropy batch
        keys = [f[2:6] for f in frames]
        for f, k in zip(frames, keys):
            assert f[1] & 0x80
            assert f[6:] == k + k   # zero payload: the masked bytes are the key itself
        assert len(set(keys)) > 290

    def test_masking_round_trip_both_ways(self):
        c, s = client(), server()
        for n in (0, 5, 125, 126, 4099, 65536):
            p = os.urandom(n)
            assert s.feed(c.message(p)) == [(OP_BINARY, p)]
            assert c.feed(s.message(p)) == [(OP_BINARY, p)]
        assert not server().message(b"abc")[1] & 0x80


# ----------------------------------------------------------------------------------------
# 5.4 Fragmentation

class TestFragmentation:
    def test_three_fragments(self):
        c = server()
        assert c.feed(frame(OP_BINARY, b"a", fin=False)) == []
        assert c.feed(frame(OP_CONT, b"b", fin=False)) == []
        assert c.feed(frame(OP_CONT, b"c")) == [(OP_BINARY, b"abc")]

    def test_empty_fragments(self):
        data = (frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False)
                + frame(OP_CONT, b""))
        assert server().feed(data) == [(OP_TEXT, "")]

    def test_continuation_without_a_message(self):
        fails(server(), frame(OP_CONT, b"x"), 1002)

    def test_continuation_after_a_finished_message(self):
        fails(server(), frame(OP_TEXT, b"x") + frame(OP_CONT, b"y"), 1002)

    @pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
    def test_new_data_frame_inside_a_fragmented_message(self, opcode):
        fails(server(), frame(OP_BINARY, b"x", fin=False) + frame(opcode, b"y"), 1002)

    def test_messages_follow_each_other(self):
        data = frame(OP_TEXT, b"a", fin=False) + frame(OP_CONT, b"b") + frame(OP_TEXT, b"c")
        assert server().feed(data) == [(OP_TEXT, "ab"), (OP_TEXT, "c")]


# ----------------------------------------------------------------------------------------
# 5.5 Control frames

class TestControlFrames:
    def test_pings_interleaved_in_a_fragmented_message(self):
        data = (frame(OP_TEXT, b"Hel", fin=False) + frame(OP_PING, b"1")
                + frame(OP_CONT, b"l", fin=False) + frame(OP_PONG, b"2") + frame(OP_PING, b"")
                + frame(OP_CONT, b"o"))
        assert server().feed(data) == [(OP_PING, b"1"), (OP_PONG, b"2"), (OP_PING, b""),
                                       (OP_TEXT, "Hello")]

    def test_control_frame_returned_at_once_mid_message(self):
        c = server()
        assert c.feed(frame(OP_BINARY, b"a", fin=False) + frame(OP_PING, b"p")) == [
            (OP_PING, b"p")]
        assert c.feed(frame(OP_CONT, b"b")) == [(OP_BINARY, b"ab")]

    def test_125_bytes_allowed(self):
        assert server().feed(frame(OP_PING, b"p" * 125)) == [(OP_PING, b"p" * 125)]

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_longer_than_125(self, opcode):
        fails(server(), frame(opcode, b"\x03\xe8" + b"p" * 124), 1002)

    @pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
    def test_fragmented_control_frame(self, opcode):
        fails(server(), frame(opcode, b"", fin=False), 1002)

    def test_ping_split_across_feeds(self):
        c = server()
        data = frame(OP_PING, b"abcdefghij")
        assert c.feed(data[:8]) == []
        assert c.feed(data[8:]) == [(OP_PING, b"abcdefghij")]


# ----------------------------------------------------------------------------------------
# 5.5.1 Close, with the codes of 7.4

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


class TestClose:
    def test_close_without_payload(self):
        c = server()
        assert c.feed(frame(OP_CLOSE)) == [(OP_CLOSE, (1005, ""))]
        assert c.close_received

    @pytest.mark.parametrize("code", VALID_CODES)
    def test_valid_codes(self, code):
        assert server().feed(frame(OP_CLOSE, struct.pack("!H", code) + b"bye")) == [
            (OP_CLOSE, (code, "bye"))]

    @pytest.mark.parametrize("code", INVALID_CODES)
    def test_invalid_codes(self, code):
        fails(server(), frame(OP_CLOSE, struct.pack("!H", code)), 1002)

    def test_one_byte_payload(self):
        fails(server(), frame(OP_CLOSE, b"\x03"), 1002)

    def test_utf8_reason(self):
        reason = "au revoir, à bientôt 👋"
        assert server().feed(frame(OP_CLOSE, b"\x03\xe8" + reason.encode())) == [
            (OP_CLOSE, (1000, reason))]

    @pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"ok\xe2\x82"])
    def test_invalid_utf8_reason(self, bad):
        fails(server(), frame(OP_CLOSE, b"\x03\xe8" + bad), 1007)

    def test_input_after_close_is_ignored(self):
        c = server()
        data = frame(OP_TEXT, b"a") + frame(OP_CLOSE, b"\x03\xe8") + frame(OP_TEXT, b"b")
        assert c.feed(data) == [(OP_TEXT, "a"), (OP_CLOSE, (1000, ""))]
        assert c.feed(frame(OP_TEXT, b"c")) == []
        assert c.feed(b"\xff\xff garbage") == []

    def test_close_inside_a_fragmented_message(self):
        data = frame(OP_TEXT, b"a", fin=False) + frame(OP_CLOSE, b"\x03\xe9")
        assert server().feed(data) == [(OP_CLOSE, (1001, ""))]


# ----------------------------------------------------------------------------------------
# 8.1 UTF-8 in text messages

VALID_TEXT = ["", "plain ascii", "é", "€", "𝄞", "κόσμε", "\u07ff\u0800\uffff",
              "\U00010000\U0010ffff", "mixed ascii and ünïcödé " * 20, "\ud7ff\ue000"]
# (ids by position: pytest names a long non-ASCII value differently from one run to
# another, and the packaging test compares two collections)
VALID_IDS = ["text%d" % i for i in range(len(VALID_TEXT))]
INVALID_TEXT = [
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf",       # stray continuation, overlong 2-byte
    b"\xe0\x80\x80", b"\xe0\x9f\xbf",                  # overlong 3-byte
    b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",          # overlong 4-byte
    b"\xed\xa0\x80", b"\xed\xbf\xbf",                  # surrogates U+D800, U+DFFF
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff",  # above U+10FFFF, never-bytes
    b"\xc3\x28", b"\xe2\x82\x28", b"\xf0\x9f\x98",     # truncated sequences
    b"ascii then \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80 end",
]


class TestUTF8:
    @pytest.mark.parametrize("text", VALID_TEXT, ids=VALID_IDS)
    def test_valid(self, text):
        assert server().feed(frame(OP_TEXT, text.encode())) == [(OP_TEXT, text)]

    @pytest.mark.parametrize("bad", INVALID_TEXT)
    def test_invalid(self, bad):
        fails(server(), frame(OP_TEXT, bad), 1007)
        fails(client(), frame(OP_TEXT, bad, key=None), 1007)

    @pytest.mark.parametrize("bad", INVALID_TEXT)
    def test_invalid_in_fragments(self, bad):
        for cut in range(len(bad) + 1):
            data = frame(OP_TEXT, bad[:cut], fin=False) + frame(OP_CONT, bad[cut:])
            fails(server(), data, 1007)

    @pytest.mark.parametrize("text", VALID_TEXT, ids=VALID_IDS)
    def test_valid_in_fragments_and_split_feeds(self, text):
        raw = text.encode()
        data = frame(OP_TEXT, raw[:len(raw) // 2], fin=False) + frame(OP_CONT, raw[len(raw) // 2:])
        assert server().feed(data) == [(OP_TEXT, text)]
        c, whole = server(), frame(OP_TEXT, raw)
        assert c.feed(whole[:len(whole) - 1]) + c.feed(whole[len(whole) - 1:]) == [(OP_TEXT, text)]

    def test_matches_python_on_every_two_byte_sequence_edge(self):
        for lead in (0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4):
            for cont in range(0x70, 0xd0):
                tail = {2: b"", 3: b"\x80", 4: b"\x80\x80"}[
                    2 if lead < 0xe0 else 3 if lead < 0xf0 else 4]
                data = bytes([lead, cont]) + tail
                try:
                    expected = [(OP_TEXT, data.decode("utf-8"))]
                except UnicodeDecodeError:
                    expected = None
                # One frame (decoded in one go) and two fragments (the incremental DFA).
                for wire in (frame(OP_TEXT, data),
                             frame(OP_TEXT, data[:1], fin=False) + frame(OP_CONT, data[1:])):
                    c = server()
                    if expected is None:
                        with pytest.raises(WebSocketError) as e:
                            c.feed(wire)
                        assert e.value.code == 1007
                    else:
                        assert c.feed(wire) == expected

    @pytest.mark.parametrize("text", ["é", "€", "𝄞", "a𝄞b€c"])
    def test_code_point_split_across_fragments(self, text):
        raw = text.encode()
        for cut in range(1, len(raw)):
            data = frame(OP_TEXT, raw[:cut], fin=False) + frame(OP_CONT, raw[cut:])
            assert server().feed(data) == [(OP_TEXT, text)]

    def test_code_point_split_across_feeds(self):
        data = frame(OP_TEXT, "𝄞".encode())
        for cut in range(7, len(data)):   # cuts inside the 4-byte payload
            c = server()
            assert c.feed(data[:cut]) == []
            assert c.feed(data[cut:]) == [(OP_TEXT, "𝄞")]

    def test_invalid_byte_detected_in_the_first_fragment(self):
        c = server()
        # The message has not ended: still a 1007 now, not when it ends.
        fails(c, frame(OP_TEXT, b"ok \xff", fin=False), 1007)

    def test_invalid_byte_detected_before_the_frame_ends(self):
        c = server()
        data = frame(OP_TEXT, b"abc\xc0" + b"x" * 1000)
        with pytest.raises(WebSocketError) as e:
            c.feed(data[:12])   # header (8) + "abc\xc0"
        assert e.value.code == 1007

    def test_overlong_split_across_fragments(self):
        c = server()
        assert c.feed(frame(OP_TEXT, b"\xe0", fin=False)) == []   # could still be valid
        fails(c, frame(OP_CONT, b"\x80\x80"), 1007)

    def test_surrogate_split_across_fragments(self):
        c = server()
        assert c.feed(frame(OP_TEXT, b"a\xed", fin=False)) == []
        fails(c, frame(OP_CONT, b"\xa0\x80", fin=False), 1007)

    def test_message_ending_inside_a_sequence(self):
        c = server()
        assert c.feed(frame(OP_TEXT, b"\xe2\x82", fin=False)) == []
        fails(c, frame(OP_CONT, b""), 1007)

    def test_binary_is_not_validated(self):
        assert server().feed(frame(OP_BINARY, b"\xff\xfe")) == [(OP_BINARY, b"\xff\xfe")]

    def test_ascii_fast_path_boundaries(self):
        for n in range(0, 20):
            for bad_at in range(n):
                raw = bytearray(b"a" * n)
                raw[bad_at] = 0x80
                fails(server(), frame(OP_TEXT, bytes(raw)), 1007)
            assert server().feed(frame(OP_TEXT, b"a" * n + "é".encode())) == [
                (OP_TEXT, "a" * n + "é")]


# ----------------------------------------------------------------------------------------
# Limits (1009)

class TestErrorsKeepWhatCameBefore:
    def test_events_before_the_error_ride_it(self):
        """The messages a peer sent before breaking the protocol, in the same read, are
        not lost: the error carries them (and the next call raises it again)."""
        data = frame(OP_TEXT, b"one") + frame(OP_PING, b"p") + frame(0x3, b"bad opcode")
        with pytest.raises(WebSocketError) as e:
            server().feed(data)
        assert e.value.code == 1002
        assert e.value.events == [(OP_TEXT, "one"), (OP_PING, b"p")]

    def test_no_events_no_list(self):
        e = fails(server(), frame(0x3, b"x"), 1002)
        assert e.events == []


class TestLimits:
    def test_header_alone_announcing_2_to_the_40(self):
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 40) + KEY
        e = fails(server(), head, 1009)
        assert "big" in e.reason

    def test_frame_size(self):
        c = server(max_frame_size=100)
        assert c.feed(frame(OP_BINARY, b"x" * 100)) == [(OP_BINARY, b"x" * 100)]
        fails(c, frame(OP_BINARY, b"x" * 101, length=101)[:8], 1009)

    def test_message_size_across_fragments_from_the_header(self):
        c = server(max_message_size=1000)
        assert c.feed(frame(OP_BINARY, b"x" * 600, fin=False)) == []
        # The second header alone (no payload yet) already overflows the message.
        fails(c, frame(OP_CONT, b"x" * 401)[:8], 1009)

    def test_message_size_exact(self):
        c = server(max_message_size=1000)
        data = frame(OP_TEXT, b"x" * 500, fin=False) + frame(OP_CONT, b"y" * 500)
        assert c.feed(data) == [(OP_TEXT, "x" * 500 + "y" * 500)]

    def test_max_frame_size_defaults_to_max_message_size(self):
        c = server(max_message_size=10)
        fails(c, frame(OP_BINARY, b"x" * 11), 1009)

    def test_control_frames_are_not_counted_in_the_message(self):
        c = server(max_message_size=4)
        data = frame(OP_BINARY, b"ab", fin=False) + frame(OP_PING, b"x" * 100) + frame(OP_CONT, b"cd")
        assert c.feed(data) == [(OP_PING, b"x" * 100), (OP_BINARY, b"abcd")]

    @pytest.mark.parametrize("kw", [dict(max_message_size=0), dict(max_frame_size=0),
                                    dict(server_max_window_bits=7),
                                    dict(client_max_window_bits=16)])
    def test_bad_settings(self, kw):
        with pytest.raises(UsageError):
            Codec(False, **kw)


# ----------------------------------------------------------------------------------------
# Sending

class TestSend:
    def test_text_and_binary(self):
        s = server()
        assert s.message("hé") == b"\x81\x03" + "hé".encode()
        assert s.message(b"\x00") == b"\x82\x01\x00"
        assert s.message(bytearray(b"ab")) == b"\x82\x02ab"
        assert s.message(memoryview(b"abc")[1:]) == b"\x82\x02bc"

    def test_fragments_round_trip(self):
        c, s = client(), server()
        out = c.message("a", fin=False) + c.message("b", fin=False) + c.message("c")
        assert s.feed(out) == [(OP_TEXT, "abc")]
        assert out[0] == 0x01 and out[0 + 7] == 0x00   # TEXT, then CONT
        out = c.message(b"x", fin=False) + c.message(b"y")
        assert s.feed(out) == [(OP_BINARY, b"xy")]

    def test_changing_type_mid_message(self):
        s = server()
        s.message("a", fin=False)
        with pytest.raises(UsageError):
            s.message(b"b")
        assert s.message("b") == b"\x80\x01b"   # the message can still be finished

    def test_lone_surrogate(self):
        with pytest.raises(UsageError):
            server().message("\ud800")

    def test_ping_pong_limits(self):
        s = server()
        assert s.ping(b"p" * 125)[1] == 125
        assert s.pong(b"p" * 125)[1] == 125
        assert s.ping() == b"\x89\x00" and s.pong() == b"\x8a\x00"
        with pytest.raises(UsageError):
            s.ping(b"p" * 126)
        with pytest.raises(UsageError):
            s.pong(b"p" * 126)

    def test_close_frames(self):
        assert server().close() == b"\x88\x02\x03\xe8"
        assert server().close(None) == b"\x88\x00"
        assert server().close(4000, "é" * 61 + "x") == (
            b"\x88\x7d\x0f\xa0" + ("é" * 61 + "x").encode())
        c = client()
        assert server().feed(c.close(1001, "going")) == [(OP_CLOSE, (1001, "going"))]
        assert c.close_sent

    @pytest.mark.parametrize("code", INVALID_CODES + [-1, 70000, 1000.0, "1000"])
    def test_close_invalid_code(self, code):
        with pytest.raises(UsageError):
            server().close(code)

    def test_close_reason_limits(self):
        with pytest.raises(UsageError):
            server().close(1000, "x" * 124)
        with pytest.raises(UsageError):
            server().close(1000, "é" * 62)   # 124 bytes of UTF-8
        with pytest.raises(UsageError):
            server().close(None, "reason without code")
        assert len(server().close(1000, "x" * 123)) == 2 + 125

    def test_after_close(self):
        s = server()
        s.close()
        for call in (lambda: s.message("x"), lambda: s.message(b"x"), s.ping, s.pong,
                     lambda: s.close(1000)):
            with pytest.raises(UsageError):
                call()
        # Receiving goes on until the peer's close.
        assert s.feed(frame(OP_TEXT, b"late")) == [(OP_TEXT, "late")]

    def test_close_after_a_failure(self):
        s = server()
        fails(s, frame(OP_TEXT, b"\xff"), 1007)
        assert s.close(1007, "invalid UTF-8") == b"\x88\x0f\x03\xef" + b"invalid UTF-8"


# ----------------------------------------------------------------------------------------
# RFC 7692 permessage-deflate

def raw_deflate(data, wbits=15):
    c = zlib.compressobj(wbits=-wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class TestPermessageDeflate:
    def test_rfc_7_2_3_1_hello(self):
        data = bytes.fromhex("c107f248cdc9c90700")
        assert client(deflate=True).feed(data) == [(OP_TEXT, "Hello")]
        assert server(deflate=True).message("Hello") == data

    def test_rfc_7_2_3_1_fragmented(self):
        data = bytes.fromhex("4103f248cd") + bytes.fromhex("8004c9c90700")
        assert client(deflate=True).feed(data) == [(OP_TEXT, "Hello")]

    def test_rfc_7_2_3_2_sharing_the_context(self):
        c = client(deflate=True)
        assert c.feed(bytes.fromhex("c107f248cdc9c90700")) == [(OP_TEXT, "Hello")]
        # The second "Hello" is a back-reference into the first message.
        assert c.feed(bytes.fromhex("c105f200110000")) == [(OP_TEXT, "Hello")]

    def test_rfc_7_2_3_3_uncompressed_block(self):
        data = bytes.fromhex("c10b000500faff48656c6c6f00")   # "Hello" in a stored block
        assert client(deflate=True).feed(data) == [(OP_TEXT, "Hello")]

    def test_rfc_7_2_3_4_bfinal_block(self):
        c = client(deflate=True)
        assert c.feed(bytes.fromhex("c108f348cdc9c90700 00".replace(" ", ""))) == [
            (OP_TEXT, "Hello")]
        # The peer ended its deflate stream: the next message starts a new one.
        assert c.feed(bytes.fromhex("c107f248cdc9c90700")) == [(OP_TEXT, "Hello")]

    def test_sender_shares_context_unless_no_context_takeover(self):
        s = server(deflate=True)
        first, second = s.message("Hello"), s.message("Hello")
        assert first == bytes.fromhex("c107f248cdc9c90700")
        assert len(second) < len(first)
        c = client(deflate=True)
        assert c.feed(first + second) == [(OP_TEXT, "Hello"), (OP_TEXT, "Hello")]
        s = server(deflate=True, server_no_context_takeover=True)
        assert s.message("Hello") == s.message("Hello") == first

    def test_no_context_takeover_applies_to_the_right_side(self):
        # client_no_context_takeover binds the client's compressor, not the server's.
        s = server(deflate=True, client_no_context_takeover=True)
        assert len(s.message("Hello")) > len(s.message("Hello"))
        c = client(deflate=True, client_no_context_takeover=True)
        assert [len(c.message("Hello")) for _ in range(3)] == [2 + 4 + 7] * 3
        c = client(deflate=True, server_no_context_takeover=True)
        assert len(c.message("Hello")) > len(c.message("Hello"))

    def test_receiver_resets_when_the_peer_has_no_context_takeover(self):
        # Two independent compressions of "Hello": fine only if the receiver resets.
        msg = bytes.fromhex("c107f248cdc9c90700")
        c = client(deflate=True, server_no_context_takeover=True)
        assert c.feed(msg + msg) == [(OP_TEXT, "Hello"), (OP_TEXT, "Hello")]
        # Without the reset, the second back-reference-free stream still decodes, but a
        # stream relying on the shared window must fail after a reset.
        c = client(deflate=True, server_no_context_takeover=True)
        assert c.feed(msg) == [(OP_TEXT, "Hello")]
        fails(c, bytes.fromhex("c105f200110000"), 1007)

    @pytest.mark.parametrize("bits", [8, 9, 10, 12, 15])
    def test_max_window_bits(self, bits):
        payload = (os.urandom(600) * 20)   # repeats at a distance of 600 bytes
        s = server(deflate=True, server_max_window_bits=bits)
        c = client(deflate=True, server_max_window_bits=bits)
        out = s.message(payload)
        assert c.feed(out) == [(OP_BINARY, payload)]
        # zlib reaches back 2**bits - 262 bytes (bits 9 for 8): 600 needs 10 bits or more.
        assert (len(out) < 2000) == (bits >= 10)

    def test_client_window_bits_bind_the_client(self):
        payload = os.urandom(1000) * 20
        c = client(deflate=True, client_max_window_bits=9)
        assert len(c.message(payload)) > 10000   # 512-byte window: no match at 1000
        s = server(deflate=True, client_max_window_bits=9)
        assert len(s.message(payload)) < 3000

    def test_compressed_fragments_round_trip(self):
        c, s = client(deflate=True), server(deflate=True)
        out = c.message("Hel", fin=False) + c.message("lo", fin=False) + c.message("!")
        assert out[0] & 0x40 and not out[0] & 0x80
        assert s.feed(out) == [(OP_TEXT, "Hello!")]

    def test_rsv1_only_on_the_first_frame(self):
        c = server(deflate=True)
        first = frame(OP_TEXT, b"\xf2\x48", fin=False, rsv=4)
        fails(c, first + frame(OP_CONT, b"\xcd\xc9\xc9\x07\x00", rsv=4), 1002)

    def test_rsv1_on_a_control_frame(self):
        fails(server(deflate=True), frame(OP_PING, b"", rsv=4), 1002)

    def test_rsv1_without_deflate(self):
        fails(client(), bytes.fromhex("c107f248cdc9c90700"), 1002)

    def test_uncompressed_messages_still_allowed(self):
        assert server(deflate=True).feed(frame(OP_TEXT, b"plain")) == [(OP_TEXT, "plain")]

    def test_control_frames_never_compressed(self):
        s = server(deflate=True)
        assert s.ping(b"x") == b"\x89\x01x"
        assert s.close() == b"\x88\x02\x03\xe8"

    def test_deflate_bomb(self):
        bomb = raw_deflate(b"\x00" * (50 * 1024 * 1024))   # 50 MiB in ~50 KiB
        assert len(bomb) < 100_000
        c = server(deflate=True, max_message_size=1 << 20)
        e = fails(c, frame(OP_BINARY, bomb, rsv=4), 1009)
        assert "big" in e.reason

    def test_bomb_across_fragments(self):
        half = zlib.compressobj(wbits=-15)
        a = half.compress(b"\x00" * 600_000) + half.flush(zlib.Z_SYNC_FLUSH)
        b = half.compress(b"\x00" * 600_000) + half.flush(zlib.Z_SYNC_FLUSH)
        c = server(deflate=True, max_message_size=1_000_000)
        assert c.feed(frame(OP_BINARY, a, fin=False, rsv=4)) == []
        fails(c, frame(OP_CONT, b[:-4]), 1009)

    def test_exact_size_limit_after_decompression(self):
        c = server(deflate=True, max_message_size=1000)
        assert c.feed(frame(OP_BINARY, raw_deflate(b"a" * 1000), rsv=4)) == [
            (OP_BINARY, b"a" * 1000)]
        fails(c, frame(OP_BINARY, raw_deflate(b"a" * 1001), rsv=4), 1009)

    def test_corrupt_data(self):
        fails(server(deflate=True), frame(OP_TEXT, b"\xff\xff\xff\xff", rsv=4), 1007)

    def test_invalid_utf8_inside_compressed_text(self):
        fails(server(deflate=True), frame(OP_TEXT, raw_deflate(b"ok\xff"), rsv=4), 1007)

    def test_invalid_utf8_detected_in_a_compressed_first_fragment(self):
        c = server(deflate=True)
        z = zlib.compressobj(wbits=-15)
        part = z.compress(b"bad \xc0\xaf") + z.flush(zlib.Z_SYNC_FLUSH)
        fails(c, frame(OP_TEXT, part, fin=False, rsv=4), 1007)

    def test_empty_compressed_message(self):
        s, c = server(deflate=True), client(deflate=True)
        assert c.feed(s.message(b"")) == [(OP_BINARY, b"")]
        assert c.feed(s.message("")) == [(OP_TEXT, "")]
