"""Fuzz an HTTP/2 server: after a valid preface and SETTINGS exchange, the input is a
sequence of frames from a client (records cut at harness.SEP, see harness.h2_frames),
answered by harness.Peer in one of its policies.

Input: policy (1 byte), chunking mode (1), options (1), then the records.
Options: 1 manual flow control, 2 bytes_headers, 4 max_concurrent_streams=3,
8 a class that defines on_frame (DATA read whole), 16 small budgets (the limits trip).

    python fuzz/fuzz_h2_server.py fuzz/corpus/fuzz_h2_server -max_len=4096
"""
import harness
from harness import Peer, feed, finish, h2_frames, parse_h2_output, split_records


class FramePeer(Peer):
    def on_frame(self, frame):
        pass


def make_server(policy, options):
    cls = FramePeer if options & 8 else Peer
    kw = {"max_concurrent_streams": 3} if options & 4 else {}
    conn = cls(True, policy, **kw)
    conn.manual_flow_control = bool(options & 1)
    conn.bytes_headers = bool(options & 2)
    if options & 16:
        conn.reset_budget = 4
        conn.empty_frame_budget = 4
        conn.stream_error_budget = 4
        conn.max_continuations = 3
        conn.max_header_block_size = 512
    conn.connection_made(True)
    return conn


def one_input(data):
    if len(data) < 3:
        return
    policy, mode, options = data[0], data[1], data[2]
    conn = make_server(policy, options)
    wire = harness.PREFACE + harness.SETTINGS_EMPTY + harness.SETTINGS_ACK \
        + h2_frames(split_records(data[3:]))
    err = feed(conn, wire, mode)
    if err is None:
        if options & 1:
            for sid in list(conn.bodies):
                try:
                    conn.open_flow(sid, len(conn.bodies[sid]))
                except harness.ALLOWED:
                    pass
        finish(conn)
    parse_h2_output(conn.take_output())


if __name__ == "__main__":
    harness.main(one_input)
