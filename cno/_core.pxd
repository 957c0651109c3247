# The HTTP/2 engine: connection and stream state in C fields (see docs/raw.md).
#
# Internal status convention: functions return 0 when all is well, CONN_ERROR after a
# connection error (GOAWAY written, the error stored on the connection, the connection
# closed), or -1 with a Python exception set (a user callback raised, or no memory).
# Public methods turn CONN_ERROR into one raise at the Python boundary.
from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, int64_t
cimport cython
from cno._buffer cimport WriteBuffer
from cno._hpack cimport Encoder, Decoder


cdef enum:
    CONN_ERROR = 1
    SETTINGS_COUNT = 10         # ids 1..9, index 0 unused


# An abuse budget: `left` goes down with each suspicious event and back up (to `limit`)
# with useful ones; below zero the connection ends with ENHANCE_YOUR_CALM. `spent`
# counts every suspicious event (Connection.stats).
cdef struct Budget:
    int64_t limit
    int64_t left
    int64_t spent


@cython.final
cdef class Stream:
    cdef uint32_t id
    cdef object key              # the id as an int object (dict key, event argument)
    cdef bint local              # we opened it (our parity)
    cdef uint8_t r_state         # R_HEADERS, R_DATA, R_CLOSED: what we expect to read
    cdef uint8_t w_state         # W_HEADERS, W_DATA, W_CLOSED: what we may write next
    cdef bint head_request       # a HEAD exchange: the response has no body
    cdef bint w_no_content       # we answered 204 or 304: no body may follow (RFC 9110 15.3.5, 15.4.5)
    cdef bint saw_final_head     # a final (non-1xx) response head arrived / was sent
    cdef int64_t send_window     # how much we may still send
    cdef int64_t recv_window     # how much the peer may still send
    cdef int64_t recv_credit     # consumed, not yet given back (WINDOW_UPDATE)
    cdef int64_t remaining       # content-length countdown, -1 when unknown
    cdef int64_t declared        # content-length as announced, -1 when unknown
    # HTTP/1.1
    cdef bint h10                # the peer speaks HTTP/1.0 in this exchange
    cdef bint w_chunked          # we write this message's body chunked
    cdef bint w_until_close      # we write this message's body until the connection closes
    cdef int64_t w_left          # content-length we announced, still to write; -1: none
    cdef bint close_after        # the connection closes once this exchange is done
    cdef bint connect            # a CONNECT request
    cdef uint8_t upgrade         # UPGRADE_NONE, UPGRADE_H2C, UPGRADE_OTHER: what the request asked
    # RFC 9218 priority (see "Extensible priorities" in _core.pyx)
    cdef uint8_t urgency         # 0 (served first) to 7; 3 by default
    cdef bint incremental        # its response is used as it arrives: share the bandwidth


cdef class Connection:
    # role and mode
    cdef bint client
    cdef bint h2
    cdef bint started
    cdef bint is_closed
    cdef bint lost               # connection_lost() was called
    cdef bint close_fired
    cdef bint close_due          # on_close waits for this call's output to go out first
    cdef bint manual_flow
    cdef public bint disallow_h2_upgrade
    cdef public bint disallow_h2_prior_knowledge
    cdef public bint bytes_headers
    cdef public bint writing_paused
    cdef int state
    cdef int depth               # nesting of public calls; output goes out at depth 0
    cdef bint corked             # cork(): output held until uncork() (or the close)
    cdef bint consuming

    # I/O
    cdef WriteBuffer inbuf       # only an incomplete tail of the input
    cdef Py_ssize_t in_off       # inbuf bytes already parsed (dropped lazily: amortised O(1))
    cdef WriteBuffer out         # output of the current public call
    cdef list out_chunks         # ... when it borrows the caller's buffers: the chunks before
                                 # `out` (None when nothing was borrowed; see write_data)
    cdef public Py_ssize_t zero_copy_threshold   # borrow payloads of at least this many bytes
    cdef public bint borrow_buffers  # ... mutable ones too (the caller keeps them unchanged)
    cdef public bint data_views  # on_message_data gets memoryviews of the input
    cdef object in_obj           # data_received's argument, while data_views is on
    cdef object in_view          # ... a byte view of it, made at the first delivery
    cdef const uint8_t* in_base  # ... its bytes
    cdef Py_ssize_t in_len
    cdef WriteBuffer hblock      # header block being assembled from CONTINUATIONs
    cdef WriteBuffer scratch     # encoded header blocks on their way out

    # streams
    cdef dict streams            # id -> Stream
    cdef bint hdr_plain          # check_headers gave only (name, value) pairs (encode_plain)
    cdef object req_method       # what parse_request found (until its caller takes them)
    cdef object req_path
    cdef tuple method_field      # the :method field of our last request, reused while the method is
                                 # the same object (the HPACK encoder then finds it by identity)
    cdef Stream streams_seen     # the stream last opened or looked up (see find_stream)
    cdef uint32_t last_stream[2] # [REMOTE], [LOCAL]: highest id opened by each side
    cdef uint32_t stream_count[2]
    cdef object recently_reset   # set of ids we reset (bounded)
    cdef object reset_order      # deque: the same ids, oldest first
    cdef list skipped            # (first, last) ranges of peer ids it never opened (bounded)

    # GOAWAY
    cdef bint goaway_sent
    cdef bint goaway_received
    cdef uint32_t goaway_last_id   # the peer's last-stream-id in its GOAWAY
    cdef uint32_t goaway_sent_id   # ours

    # settings
    cdef uint32_t local[SETTINGS_COUNT]     # acknowledged by the peer: in force
    cdef uint32_t wanted[SETTINGS_COUNT]    # the latest we sent (or will send)
    cdef uint32_t remote[SETTINGS_COUNT]
    cdef object settings_queue   # list of dicts {id: value} sent and not yet acknowledged
    cdef bint remote_settings_seen

    # flow control (connection level)
    cdef int64_t send_window
    cdef int64_t recv_window
    cdef int64_t recv_credit
    cdef int64_t recv_target     # the window size we keep offering

    # HPACK
    cdef readonly Encoder encoder     # (read-only attributes: for inspection, docs/raw.md)
    cdef readonly Decoder decoder

    # Header-validation knobs (docs/raw.md, "Header knobs"); the defaults are cno's checks.
    cdef public bint validate_inbound_headers    # RFC 9113 8.2/8.3 checks on received heads
    cdef public bint validate_outbound_headers   # ... on the heads we write
    cdef public bint malformed_is_connection_error   # 8.1.1 malformed: GOAWAY, not RST_STREAM

    # a DATA frame in progress (payload still arriving)
    cdef Stream data_s           # its stream, while it is being delivered
    cdef uint32_t data_stream
    cdef uint8_t data_flags
    cdef int64_t data_left       # payload bytes still to come, padding included
    cdef int64_t data_pad        # padding bytes at the end of it
    cdef int64_t data_length     # the whole frame's length (flow control)
    cdef bint data_deliver       # deliver it (else discard)
    cdef WriteBuffer pend        # small DATA payloads of one stream gathered in this feed
    cdef Stream pend_s           # ... their stream (None: nothing gathered)

    # a header block in progress (HEADERS or PUSH_PROMISE waiting for CONTINUATIONs)
    cdef uint32_t cont_stream
    cdef uint8_t cont_type
    cdef uint8_t cont_flags
    cdef uint32_t cont_promised
    cdef int cont_count
    cdef bint cont_self_dependent   # HEADERS whose priority names its own stream

    # HTTP/1.1 (see _h1.pxi)
    cdef public object scheme    # :scheme of requests read over HTTP/1.1
    cdef object h1_scheme_field  # (":scheme", scheme) as last delivered (see scheme_field)
    cdef object h1_scheme_of     # ... the scheme object it was made from
    cdef bint h1_scheme_bytes    # ... and bytes_headers then
    cdef object h1_authority_field  # the last (":authority", host) (see authority_field)
    cdef public Py_ssize_t max_head_size
    cdef public Py_ssize_t max_header_count
    cdef public Py_ssize_t max_chunk_line
    # Regular fields that passed RFC 9113 8.2's checks, remembered by identity (one
    # reference each): the HPACK decoder hands out one tuple per table entry.
    cdef PyObject* checked[64]
    # Request pseudo-header fields with valid values, by identity, and their kinds.
    cdef PyObject* pseudo_seen[32]
    cdef int64_t pseudo_kinds[32]
    # Written te and content-length fields that passed check_headers (see remember_sent).
    cdef PyObject* sent_checked[16]
    cdef int64_t h1_left         # body or chunk bytes still to read; -1 until EOF
    cdef Py_ssize_t h1_scanned   # how far the current head was searched for its end
    cdef Stream h1_rs            # the stream whose message is being read
    cdef uint32_t h1_wait_switch # a CONNECT/Upgrade request waits for its answer
    cdef bint h1_paused          # input waits for a stream to end (pipelining limit)
    cdef bint h1_tunnel          # the connection is a raw tunnel for h1_rs
    cdef object h1_error_status  # the HTTP status of the last HTTP/1.1 protocol error

    # limits and budgets
    cdef public Py_ssize_t max_header_block_size
    cdef public int max_continuations
    cdef Budget resets           # streams the peer opens and resets before they complete
    cdef Budget empties          # frames that carry nothing
    cdef Budget controls         # PING/SETTINGS/stream errors while our replies go unread
    cdef Budget errors           # streams we reset because the peer broke their rules

    # RFC 9218 priorities (see "Extensible priorities" in _core.pyx)
    cdef int hdr_prio            # the priority field of the head being read or written (PRIO_*)
    cdef dict prio_idle          # peer stream id -> PRIORITY_UPDATE that came before its HEADERS
    cdef dict waiting            # id -> Stream whose write a window cut short (None: none yet)
    cdef uint32_t rr_last[8]     # per urgency: the incremental stream that last sent DATA
    cdef bint got_settings_frame # the peer's first SETTINGS frame was applied (RFC 9218 2.1)

    # The h2 face's knobs (cno.h2; docs/raw.md, "Knobs for h2-style faces"). Off by default.
    cdef public bint pseudo_in_headers  # header lists carry the pseudo-header fields, as on the wire
    cdef public bint utf8_fields        # ... their str fields are sent UTF-8 encoded (not latin-1)
    cdef public bint frame_data         # on_message_data once per DATA frame, whole, empty ones too
    cdef public bint flow_exact         # manual flow control, no batching, nothing credited by itself
    cdef public object settings_order   # names the first SETTINGS lists (in order), else None
    cdef readonly int64_t data_frame_length  # the DATA frame being delivered: its flow-controlled length
    cdef public bint defer_preface      # connection_made writes nothing: send_preface() does
    cdef bint preface_sent              # ... and send_preface() was called
    cdef public bint lenient_start      # the peer's first frame need not be SETTINGS
    cdef public bint first_settings_in_force  # our first SETTINGS apply at once (no ACK awaited)
    cdef public bint strict_errors      # the peer's stream errors end the connection (GOAWAY)
    cdef dict peer_resets               # ... except on streams the peer reset: their ids (bounded)
    cdef public bint priority_update_frames  # read PRIORITY_UPDATE (RFC 9218); else an unknown type
    cdef public object next_head_priority  # bytes: RFC 7540 priority fields for the next HEADERS
    cdef public bint control_frames_only  # on_frame skips DATA, CONTINUATION, plain HEADERS/PUSH_PROMISE
    cdef public bint reset_late_frames  # HEADERS/DATA on a stream closed by RST_STREAM: RST_STREAM each
    cdef public bint status_101         # 101 is an informational status in HTTP/2 too
    cdef public bint lenient_protocol   # :protocol allowed without our SETTINGS_ENABLE_CONNECT_PROTOCOL
    cdef public bint lenient_frame_size # an oversized frame fails once its payload overflows, not at its header
    cdef public bint data_before_head   # a server's write_data may precede its response head
    cdef public bint read_goaways       # closed by the peer's GOAWAY: later GOAWAY frames still read
    cdef public int compression_error_code   # GOAWAY code for a header block HPACK cannot decode
    cdef public int continuation_flood_code  # GOAWAY code for more than max_continuations

    # the error that closed the connection
    cdef object error_class
    cdef object error_message
    cdef int error_code

    # event methods the subclass defines (None where it does not)
    cdef object ev_writev, ev_stream_start, ev_stream_end, ev_flow_increase
    cdef object ev_message_head, ev_message_data, ev_message_tail, ev_message_push
    cdef object ev_frame, ev_frame_send, ev_pong, ev_settings, ev_close, ev_upgrade
    cdef object ev_priority_update


# HTTP/1.1 without a Connection (docs/raw.md): for faces with their own state machine.
cdef object h1_parse_head(object data, Py_ssize_t start, int kind)
cdef object h1_parse_chunk_line(object data, Py_ssize_t start)
cdef bytes h1_head_bytes(tuple start, list fields)
