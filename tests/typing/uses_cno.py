"""Typed use of cno's public API, checked by mypy in test_typing.py (not run by pytest)."""
from typing import Any, Optional

import cno
import cno.acgi
import cno.hpack
import cno.raw

encoder = cno.hpack.Encoder()
decoder = cno.hpack.Decoder(max_header_list_size=None)
block = encoder.encode([(":method", "GET"), ("x", b"y"), ("authorization", "s", True)], huffman=False)
reveal_type(block)  # E: bytes
headers = decoder.decode(block, raw=True)
decoder.max_allowed_table_size = 1024


class Server(cno.raw.Connection):
    def on_message_head(self, stream: int, code: int, method: object, path: object,
                        headers: list[Any]) -> None:
        self.write_head(stream, 200, "", "", [("a", "b")], True)


server = Server(server=True)
server.connection_made(True)
reveal_type(server.write_data(1, b"x", True))  # E: int
reveal_type(server.write_push(1, "GET", "/", []))  # E: int
server.update_settings(max_concurrent_streams=10)
reveal_type(server.local_settings)  # E: dict[str, int]
reveal_type(cno.raw.CNO_RST_CANCEL)  # E: int


async def client() -> None:
    conn = await cno.connect("http://127.0.0.1/")
    response = await conn.request("GET", "/")
    reveal_type(response.code)  # E: int
    body = await response.payload.read()
    reveal_type(body)  # E: bytes
    channel = cno.Channel(4)
    await channel.put(b"x")
    channel.close()


async def acgi_application(receive: cno.acgi.Receive, send: cno.acgi.Send) -> bytes:
    stream_id = await send({"type": "http.request", "url": "https://example.com/",
                            "method": "GET", "headers": [(b"accept", b"*/*")]})
    reveal_type(stream_id)  # E: int | None
    message = await receive(stream_id)
    reveal_type(message)  # E: dict[str, Any]
    body: cno.acgi.ResponseBody = message["body"]
    return await body.read()


async def acgi_client() -> Optional[bytes]:
    result = await cno.acgi.connect("https://example.com/", acgi_application)
    reveal_type(result)  # E: bytes
    async with cno.acgi.Pool(max_connections=4) as pool:
        response = await pool.request("GET", "https://example.com/")
        reveal_type(response["status_code"])  # E: Any
        return await response["body"].read()  # type: ignore[no-any-return]
