"""Request smuggling (RFC 9112 6.1, 6.3, 7.1, 11.2): every ambiguous framing of a request is
an error (ProtocolError from data_received with ``status`` 400, or 501 for an unknown transfer
coding, docs/raw.md "Errors"), the connection is closed, the server writes that status with
connection: close, and a second request hidden in the body (or right after it) is NEVER parsed.
"""
import pytest

from cno import errors
from h1_util import SMUGGLED, connection_tokens, expect_error, h11_responses, server

HOST = b"Host: example.com\r\n"


def post(*lines, body=b"", version=b"HTTP/1.1", host=True):
    head = b"POST /upload " + version + b"\r\n" + (HOST if host else b"")
    return head + b"".join(l + b"\r\n" for l in lines) + b"\r\n" + body


def check(data, status=400, head_error=True):
    """``data`` + SMUGGLED is rejected; nothing for /smuggled; the error response is written
    (always when ``head_error``: no response was owed; else only checked if written)."""
    c = server()
    e = expect_error(c, data, status)
    wire = c.take()
    if head_error:
        assert not c.heads(), "the smuggling request itself was delivered: %r" % (c.events,)
    if head_error or wire:
        assert wire, "no error response written"
        (msgs,) = h11_responses(wire, ["POST"], eof=True)
        assert msgs[-1].code == e.status
        assert "close" in connection_tokens(msgs[-1].headers)
    return c, e


# A body that hides SMUGGLED if read as chunked (ends at "0\r\n\r\n") or by a length.
CHUNKED_END = b"0\r\n\r\n"


# RFC 9112 6.1: "A server MAY reject a request that contains both Content-Length and
# Transfer-Encoding ... Regardless, the server MUST close the connection after responding";
# RFC 9112 11.2 (request smuggling). docs/raw.md: both is an error.
def test_cl_then_te():
    check(post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=CHUNKED_END))


def test_te_then_cl():
    check(post(b"Transfer-Encoding: chunked", b"Content-Length: 5", body=CHUNKED_END))


def test_cl_and_te_classic_cl_te_split():
    # the front end uses CL (covers the smuggled request), the back end TE (ends at 0 chunk)
    check(post(b"Content-Length: %d" % (len(CHUNKED_END) + len(SMUGGLED)),
               b"Transfer-Encoding: chunked", body=CHUNKED_END))


# RFC 9112 6.3 (5): "If a message is received without Transfer-Encoding and with an invalid
# Content-Length header field, then the message framing is invalid ... the server MUST respond
# with a 400 (Bad Request) status code and then close the connection." RFC 9110 8.6: a list of
# differing values is invalid.
def test_two_different_content_lengths():
    check(post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"))


def test_content_length_list_of_different_values():
    check(post(b"Content-Length: 5, 6", body=b"hello!"))


@pytest.mark.parametrize("cl", [b"-1", b"0x10", b"+5", b"1 0", b"5 5", b"", b"5a", b"1e3",
                                b"\xef\xbc\x95", b"5;", b"0.5"])
def test_content_length_not_plain_digits(cl):
    # RFC 9110 8.6: Content-Length = 1*DIGIT (docs/raw.md: anything else is an error).
    check(post(b"Content-Length: " + cl, body=b"hello"))


# RFC 9112 6.3 (4): "If a Transfer-Encoding header field is present in a request and the
# chunked transfer coding is not the final encoding, the message body length cannot be
# determined reliably; the server MUST respond with the 400 (Bad Request) status code and then
# close the connection."
@pytest.mark.parametrize("te", [b"chunked, gzip", b"gzip", b"chunked, identity"])
def test_te_chunked_not_last(te):
    check(post(b"Transfer-Encoding: " + te, body=CHUNKED_END), status=(400, 501))


def test_te_chunked_not_last_is_400():
    # 6.3 (4) is a MUST with 400; a coding cno knows (gzip) followed by nothing else.
    check(post(b"Transfer-Encoding: chunked, gzip", body=CHUNKED_END), status=400)


def test_te_identity():
    # RFC 9112 6.1: a server that receives a transfer coding it does not understand SHOULD
    # respond 501; "identity" is no longer a registered coding (RFC 9112 7). It is also not
    # chunked-last (6.3 (4): 400). Either is fine; the framing must not be trusted.
    check(post(b"Transfer-Encoding: identity", b"Content-Length: 5", body=b"hello"),
          status=(400, 501))


def test_te_unknown_coding_then_chunked_501():
    # RFC 9112 6.1 / docs/raw.md: 501 for an unknown transfer coding.
    check(post(b"Transfer-Encoding: x-unknown-coding, chunked", body=CHUNKED_END), status=501)


def test_te_two_fields_chunked_not_last():
    # RFC 9110 5.3: several field lines form one comma list: "chunked, gzip".
    check(post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", body=CHUNKED_END),
          status=(400, 501))


# RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; docs/raw.md: a bare LF
# in chunked framing is an error (only head lines may end with a bare LF).
def test_bare_lf_in_chunk_size_line():
    check(post(b"Transfer-Encoding: chunked", body=b"5\nhello\r\n0\r\n\r\n"), head_error=False)


def test_bare_lf_after_chunk_data():
    check(post(b"Transfer-Encoding: chunked", body=b"5\r\nhello\n0\r\n\r\n"), head_error=False)


def test_bare_lf_in_last_chunk_line():
    check(post(b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\n\r\n"), head_error=False)


def test_chunk_data_longer_than_size():
    # the CRLF after chunk-data must follow exactly chunk-size octets
    check(post(b"Transfer-Encoding: chunked", body=b"3\r\nhello\r\n0\r\n\r\n"), head_error=False)


@pytest.mark.parametrize("size", [b"0x5", b"-5", b"+5", b" 5", b"g", b"",
                                  b"1" + b"0" * 16, b"f" * 17, b"8000000000000000"])
def test_bad_chunk_size(size):
    # RFC 9112 7.1: chunk-size = 1*HEXDIG; docs/raw.md: chunk sizes are 63-bit (overflow is an
    # error, never a wrap-around to a small size).
    check(post(b"Transfer-Encoding: chunked", body=size + b"\r\nhello\r\n0\r\n\r\n"),
          head_error=False)


def test_obs_fold_in_te():
    # RFC 9112 5.2: obs-fold in a request: 400 (docs/raw.md: an error).
    check(post(b"Transfer-Encoding: identity", b" chunked", b"Content-Length: 5",
               body=CHUNKED_END))


def test_obs_fold_plain():
    check(post(b"X-Folded: a", b"\tb", b"Content-Length: 0"))


def test_space_before_colon_te():
    # RFC 9112 5.1: whitespace between field name and colon: MUST reject with 400.
    check(post(b"Transfer-Encoding : chunked", b"Content-Length: 5", body=CHUNKED_END))


def test_space_before_colon_cl():
    check(post(b"Content-Length : 5", body=b"hello"))


def test_http10_with_transfer_encoding():
    # RFC 9112 6.1: a server that receives an HTTP/1.0 message containing Transfer-Encoding
    # MUST treat the message as if the framing is faulty, even if a Content-Length is present,
    # and close the connection.
    check(post(b"Transfer-Encoding: chunked", b"Content-Length: 5", body=CHUNKED_END,
               version=b"HTTP/1.0", host=False))


def test_http10_with_transfer_encoding_only():
    check(post(b"Transfer-Encoding: chunked", body=CHUNKED_END, version=b"HTTP/1.0",
               host=False))


def test_te_with_leading_garbage_name():
    # a Transfer-Encoding hidden behind a non-token name must not be honoured as one
    check(post(b"Transfer-Encoding\x0b: chunked", b"Content-Length: 5", body=CHUNKED_END))


def test_valid_chunked_request_then_pipelined_request_is_parsed():
    # control: the same shapes, well formed, do parse the second request (so the checks above
    # can tell "rejected" from "never looked").
    c = server()
    c.feed(post(b"Transfer-Encoding: chunked", body=CHUNKED_END) + SMUGGLED)
    assert [h[4] for h in c.heads()] == ["/upload", "/smuggled"]
    c = server()
    c.feed(post(b"Content-Length: 5", body=b"hello") + SMUGGLED)
    assert [h[4] for h in c.heads()] == ["/upload", "/smuggled"]
    assert c.body(1) == b"hello"
