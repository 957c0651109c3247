"""``cno.websocket``: WebSockets (RFC 6455) over HTTP/1.1 Upgrade and HTTP/2 extended
CONNECT (RFC 8441), with permessage-deflate (RFC 7692) (docs/websocket.md)."""
