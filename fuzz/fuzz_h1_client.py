"""Fuzz an HTTP/1.1 client: it sends requests, then the input is what the server
answers (raw bytes), then EOF.

Input: requests (1 byte: low 2 bits how many, 1..4, sent one after another as each
answer completes; bit 2 the first is a HEAD; bit 3 the first is a POST with a chunked
body; bit 4 the first is a CONNECT; bit 5 the first asks to Upgrade (websocket); bit 6
bytes_headers; bit 7 HTTP/2 upgrade allowed (Upgrade: h2c on a final first request)),
chunking mode (1), then the bytes.

    python fuzz/fuzz_h1_client.py fuzz/corpus/fuzz_h1_client -dict=fuzz/h1.dict
"""
import harness
from harness import ALLOWED, Peer, feed, finish

HOST = [(":authority", "example.com")]


class Client(Peer):
    def __init__(self, spec):
        super().__init__(False)
        self.todo = []
        spec_first = spec & 0x3C
        for i in range(1 + (spec & 3)):
            self.todo.append(spec_first if i == 0 else 0)

    def send_next(self):
        if not self.todo or self.closed:
            return
        kind = self.todo[0]
        sid = self.next_stream
        try:
            if kind & 4:
                self.write_head(sid, 0, "HEAD", "/", HOST, True)
            elif kind & 8:
                self.write_head(sid, 0, "POST", "/up", HOST, False)
                self.write_data(sid, b"abc", False)
                self.write_tail(sid, [("x-t", "1")])
            elif kind & 16:
                self.write_head(sid, 0, "CONNECT", "example.com:443",
                                [(":authority", "example.com:443")], False)
            elif kind & 32:
                self.write_head(sid, 0, "GET", "/ws", HOST + [("upgrade", "websocket"),
                                                              ("connection", "upgrade")],
                                True)
            else:
                self.write_head(sid, 0, "GET", "/%d" % len(self.todo), HOST, True)
        except ALLOWED:
            return
        self.todo.pop(0)

    def on_message_tail(self, stream, trailers):
        super().on_message_tail(stream, trailers)
        self.send_next()


def one_input(data):
    if len(data) < 2:
        return
    spec = data[0]
    conn = Client(spec)
    conn.bytes_headers = bool(spec & 64)
    conn.disallow_h2_upgrade = not spec & 128
    conn.connection_made(False)
    conn.send_next()
    if feed(conn, data[2:], data[1]) is None:
        finish(conn)


if __name__ == "__main__":
    harness.main(one_input)
