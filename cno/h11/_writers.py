"""h11's writers (``h11._writers``): cno.h11's own writing code as h11's writer objects
(``writer(event, write)``)."""
from cno.h11._h11 import (
    ChunkedWriter, ContentLengthWriter, Http10Writer, write_any_response, write_headers,
    write_request,
)
from cno.h11._state import CLIENT, IDLE, SEND_BODY, SEND_RESPONSE, SERVER

__all__ = ["WRITERS"]

WRITERS = {
    (CLIENT, IDLE): write_request,
    (SERVER, IDLE): write_any_response,
    (SERVER, SEND_RESPONSE): write_any_response,
    SEND_BODY: {
        "chunked": ChunkedWriter,
        "content-length": ContentLengthWriter,
        "http/1.0": Http10Writer,
    },
}
