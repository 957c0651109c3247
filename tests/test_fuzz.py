"""Smoke runs of the fuzz harnesses (fuzz/, see fuzz/README.md), and a regression test
for each engine bug the fuzzing found (fixed since; their reproducers are kept here).

Each harness runs in a subprocess against the cno these tests import (a normal build:
no sanitizers, so libFuzzer is guided only by the harnesses' own Python code), with a
fixed seed and run count over its committed seed corpus; new inputs go to a scratch
directory, never into fuzz/corpus. Exit code 0 means no finding: only cno's own errors
left the engine, no invariant broke, no hang. The long, sanitized runs are
tools/fuzz-long.sh's.

fuzz/ sits beside tests/ in a checkout; a copy of tests/ alone (cibuildwheel's) has no
harnesses to run, and those tests skip.
"""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import cno.raw
from cno.errors import CnoError, ProtocolError

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"

# Runs per harness: a few seconds each on a loaded machine (the differential harness
# runs three implementations per input).
HARNESSES = {
    "fuzz_hpack": 3000,
    "fuzz_h2_server": 2000,
    "fuzz_h2_client": 2000,
    "fuzz_h1_server": 3000,
    "fuzz_h1_client": 3000,
    "fuzz_h2c_upgrade": 3000,
    "fuzz_pair": 2000,
    "fuzz_diff": 1000,
    "fuzz_ws": 3000,
}


def _needs_fuzz():
    if not (FUZZ / "harness.py").is_file():
        pytest.skip("no fuzz/ beside tests/ (a copy of the tests alone)")
    try:
        import atheris  # noqa: F401
    except ImportError:
        if os.environ.get("CI") and sys.platform == "linux" and platform.machine() == "x86_64":
            pytest.fail("atheris is not installed (tools/test.sh installs the fuzz extra)")
        pytest.skip("atheris is not installed (Linux x86_64 wheels only)")


def _env():
    """The subprocess imports the cno these tests use: its parent directory goes first on
    PYTHONPATH (site-packages for an installed cno, which is first anyway; the source
    tree when the tests run against it). Nothing else of the checkout is added."""
    env = dict(os.environ)
    where = str(Path(cno.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([where] + [p for p in
                                                   env.get("PYTHONPATH", "").split(os.pathsep)
                                                   if p])
    for name in ("LD_PRELOAD", "CNO_FUZZ_SANITIZED", "CNO_FUZZ_DIFF_LOG", "CNO_FUZZ_PYCOV",
                 "CNO_FUZZ_STRICT", "CNO_FUZZ_TRACE"):
        env.pop(name, None)
    return env


def test_harness_imports_the_same_cno(tmp_path):
    _needs_fuzz()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import harness, cno; "
            "print(cno.__file__)")
    out = subprocess.run([sys.executable, "-c", code, str(FUZZ)], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == Path(cno.__file__).resolve()


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_smoke(name, tmp_path):
    _needs_fuzz()
    corpus = FUZZ / "corpus" / name
    assert corpus.is_dir() and any(corpus.iterdir()), "no seed corpus for %s" % name
    scratch = tmp_path / "new"
    scratch.mkdir()
    cmd = [sys.executable, str(FUZZ / (name + ".py")), "-seed=1",
           "-runs=%d" % HARNESSES[name], "-max_len=2048", "-timeout=20",
           "-artifact_prefix=%s%s" % (tmp_path, os.sep), str(scratch), str(corpus)]
    out = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=300)
    tail = out.stderr[-4000:]
    assert out.returncode == 0, "%s found something:\n%s" % (name, tail)
    assert "Done %d runs" % HARNESSES[name] in out.stderr, tail


# -- bugs found by the fuzzing (fixed) -------------------------------------------------------------

class _Peer(cno.raw.Connection):
    def __init__(self, server):
        super().__init__(server)
        self.out = []
        self.events = []

    def on_writev(self, chunks):
        self.out.extend(chunks)

    def on_message_head(self, stream, code, method, path, headers):
        self.events.append(("head", stream, code, method))

    def on_message_data(self, stream, data):
        self.events.append(("data", stream, data))

    def on_message_tail(self, stream, trailers):
        self.events.append(("tail", stream))

    def take(self):
        out = b"".join(self.out)
        self.out.clear()
        return out


class _PushClient(_Peer):
    def on_message_push(self, stream, parent, method, path, headers):
        self.events.append(("push", stream, parent))


def _frame(type_, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes((type_, flags)) + stream.to_bytes(4, "big") \
        + payload


def test_h1_upgrade_request_body_is_framed():
    # fuzz_pair input 1015000000030402030000000002000083030402100200000267030b0003979797
    # 979797979797040800: a HEAD request carrying
    # `upgrade: close`, not final, then 11 body bytes and write_tail. RFC 9110 7.8: the server may ignore
    # Upgrade and answer as usual, so the request's body must be framed like any body
    # (RFC 9112 6: chunked when there is no content-length). cno sends the bytes raw as
    # if the tunnel were open; the server (cno too) ends the request at its head and would
    # parse the body as the next request.
    client, server = _Peer(False), _Peer(True)
    client.connection_made(False)
    server.connection_made(False)
    client.write_head(1, 0, "POST", "/", [(":scheme", "http"), (":authority", "a"),
                                          ("upgrade", "websocket")], False)
    try:
        client.write_data(1, b"hello", True)
    except CnoError:
        return   # refusing the body until the answer is a fix too
    server.data_received(client.take())
    assert ("data", 1, b"hello") in server.events
    assert server.buffered_input == 0


def test_push_promise_on_even_stream_is_a_connection_error():
    # fuzz_diff (h2 client mode): RFC 9113 6.6, a PUSH_PROMISE must be on a stream the
    # client opened (odd) that is open or half-closed; stream 2 was never opened and
    # cannot be a client's: 5.1 (idle stream: anything but HEADERS or PRIORITY is a
    # connection error PROTOCOL_ERROR), 5.1.1. cno answers RST_STREAM(CANCEL) on the
    # promised stream and goes on. On an odd idle stream it does raise.
    client = _PushClient(False)
    client.connection_made(True)
    client.write_head(1, 0, "GET", "/", [(":scheme", "https"), (":authority", "example.com")],
                      True)
    block = bytes.fromhex("828784410b6578616d706c652e636f6d")  # GET https example.com /
    wire = _frame(4, 0, 0) + _frame(4, 1, 0) + _frame(5, 4, 2, (4).to_bytes(4, "big") + block)
    with pytest.raises(ProtocolError):
        client.data_received(wire)


def test_http_1_minor_versions_above_1_are_read_as_1_1():
    # fuzz_diff (h1 server mode, against h11): RFC 9110 2.5, a recipient that implements
    # the major version SHOULD process a higher minor version as the highest minor version
    # it implements (and RFC 9112 2.3 keeps 505 for a major version it refuses).
    server = _Peer(True)
    server.connection_made(False)
    server.data_received(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")
    assert ("head", 1, 0, "GET") in server.events


def test_h1_write_tail_with_trailers_checks_content_length():
    # fuzz_pair input 000001000024000105020110050501010404029393939393939393939393939393
    # 93939393939393939393939393939393939393939393939393939303003b04020300010005051b0104e6
    # 030402. docs/raw.md: "A body announced with
    # content-length must be exactly that long (UsageError before anything is written
    # otherwise)"; write_tail(stream) and write_data(stream, b"", True) raise so, but
    # write_tail(stream, trailers) does not: the trailers are dropped (the body is not
    # chunked) and the message counts as complete, so the client sends its next request
    # right behind 4 of 5 body bytes, and the server takes that request's first byte as
    # the body's last (RFC 9112 6.3, 8: an incomplete message; here a desync).
    client, server = _Peer(False), _Peer(True)
    client.connection_made(False)
    server.connection_made(False)
    client.write_head(1, 0, "POST", "/", [(":authority", "a"), ("content-length", "5")], False)
    client.write_data(1, b"abcd", False)
    with pytest.raises(CnoError):
        client.write_tail(1, [("x-checksum", "1")])
    # (what happened before the fix:)
    # client.write_head(3, 0, "GET", "/next", [(":authority", "a")], True)
    # server.data_received(client.take()) -> body b"abcdG", then a request "ET /next"
