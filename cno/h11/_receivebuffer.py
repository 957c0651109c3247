"""h11's receive buffer (``h11._receivebuffer``), for code that drives h11's readers
(cno.h11._readers) directly. cno.h11's Connection does not use it: it keeps a bytearray
and an offset, and the engine parses in place."""
from typing import List, Optional, Union

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    """Bytes received and not yet consumed, with h11's extraction methods."""

    def __init__(self) -> None:
        self._data = bytearray()

    def __iadd__(self, byteslike: Union[bytes, bytearray]) -> "ReceiveBuffer":
        self._data += byteslike
        return self

    def __bool__(self) -> bool:
        return bool(len(self))

    def __len__(self) -> int:
        return len(self._data)

    def __bytes__(self) -> bytes:
        return bytes(self._data)

    def _extract(self, count: int) -> bytearray:
        out = self._data[:count]
        del self._data[:count]
        return out

    def maybe_extract_at_most(self, count: int) -> Optional[bytearray]:
        """Up to count bytes, or None when there are none."""
        out = self._data[:count]
        if not out:
            return None
        return self._extract(count)

    def maybe_extract_next_line(self) -> Optional[bytearray]:
        """The first line with its CRLF, once the CRLF has arrived."""
        idx = self._data.find(b"\r\n")
        if idx == -1:
            return None
        return self._extract(idx + 2)

    def maybe_extract_lines(self) -> Optional[List[bytearray]]:
        """The lines up to the first empty one (line ends CRLF or LF, removed), once it
        has arrived; [] when the buffer starts with an empty line."""
        if self._data[:1] == b"\n":
            self._extract(1)
            return []
        if self._data[:2] == b"\r\n":
            self._extract(2)
            return []
        lf = self._data.find(b"\n")
        while lf != -1:
            nxt = lf + 1
            if self._data[nxt:nxt + 1] == b"\r":
                nxt += 1
            if self._data[nxt:nxt + 1] == b"\n":
                lines = self._extract(nxt + 1).split(b"\n")
                for line in lines:
                    if line.endswith(b"\r"):
                        del line[-1]
                del lines[-2:]
                return lines
            lf = self._data.find(b"\n", lf + 1)
        return None

    def is_next_line_obviously_invalid_request_line(self) -> bool:
        """Whether the first byte can begin no request or status line (below "!")."""
        return bool(self._data) and self._data[0] < 0x21
