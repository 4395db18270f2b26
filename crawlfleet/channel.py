"""The wire format between a spider and its node: length-prefixed BSON
documents on a stream socket the node hands the spider (file descriptor
``CRAWLFLEET_CHANNEL_FD``). BSON, not JSON, so that items keep their types
(dates, bytes) exactly as a direct insert would store them.

Requests: ``{"op": "items", "items": [...]}`` and ``{"op": "stats", "stats":
{...}}``; each gets one reply, ``{"ok": true, "stored": n}`` or ``{"ok":
false, "error": "..."}``. Shared by the SDK (crawlfleet.sdk.context) and the
node (node.taskchannel).
"""

import struct

import bson

HEADER = struct.Struct("!I")
MAX_FRAME = 512 * 1024 * 1024


class ChannelClosed(Exception):
    """Raised when the other end closed the channel."""


def send(sock, document):
    data = bson.encode(document)
    sock.sendall(HEADER.pack(len(data)) + data)


def receive(sock):
    """The next document, or raises ChannelClosed."""
    size = HEADER.unpack(_exactly(sock, HEADER.size))[0]
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes is larger than {MAX_FRAME}")
    return bson.decode(_exactly(sock, size))


def _exactly(sock, n):
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
