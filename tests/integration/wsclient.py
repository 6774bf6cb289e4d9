"""A blocking WebSocket client connection that behaves like a stream socket.

This module owns the client side of RFC 6455 for the integration suite: the HTTP upgrade
(checked: 101, Upgrade, Connection, Sec-WebSocket-Accept, the subprotocol), masked binary
frames out, frames in (payload returned as stream bytes, pings answered, a close frame
answered and reported as end of stream). With it the byte-exact MQTT client (rawmqtt.py)
runs unchanged over ws:// and wss://: `sendall` sends one binary frame, `recv` returns
MQTT bytes, `fileno` serves select().

It is deliberately independent of tmqtt's C implementation (written from RFC 6455), and
its frame builder is public so that tests can send malformed frames on purpose.

Invariant: recv(n) reads at most n bytes from the socket and returns at most that many
payload bytes, so nothing decoded waits inside this object where select() cannot see it.
"""

import base64
import hashlib
import os
import socket
import ssl
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload, opcode=2, fin=True, mask=True, rsv=0, length=None, key=None):
    """One frame as bytes. `length` overrides the encoded length (for malformed frames)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4) if key is None else key
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return head + key + masked


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(host, port, path="/mqtt", key=None, protocol="mqtt", extra=()):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port), "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if protocol:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


def read_head(sock, limit=65536):
    """Read an HTTP response head; returns (status, headers dict (lower-case), rest)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed during the HTTP response (got %r)" % buf)
        buf += chunk
        if len(buf) > limit:
            raise ConnectionError("HTTP response head too large")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def tls_wrap(sock, host, cafile=None):
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    if cafile:
        ctx.check_hostname = False
    return ctx.wrap_socket(sock, server_hostname=host)


class WsSocket:
    """A connected ws:// or wss:// socket carrying MQTT (subprotocol mqtt)."""

    def __init__(self, host, port, timeout=5.0, tls=False, cafile=None, path="/mqtt",
                 protocol="mqtt"):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.raw = b""           # wire bytes not decoded yet
        self.left = 0            # payload bytes of the current frame still to come
        self.eof = False
        self.close_code = None   # status of the server's close frame, when one came
        req, key = upgrade_request(host, port, path, protocol=protocol)
        try:
            if tls:
                sock = self.sock = tls_wrap(sock, host, cafile)
            sock.sendall(req)
            status, headers, rest = read_head(sock)
        except (ConnectionError, ssl.SSLError):
            # closed before answering (e.g. max_connections): like a TCP connection
            # the broker closed at once, it reads as end of stream
            self.eof = True
            return
        if status != 101:
            raise ConnectionError("WebSocket upgrade refused: HTTP %d" % status)
        if headers.get("sec-websocket-accept") != accept_for(key):
            raise ConnectionError("bad Sec-WebSocket-Accept %r" % headers.get("sec-websocket-accept"))
        if headers.get("upgrade", "").lower() != "websocket" or \
                "upgrade" not in headers.get("connection", "").lower():
            raise ConnectionError("101 without Upgrade/Connection: %r" % headers)
        if headers.get("sec-websocket-protocol") != protocol:
            raise ConnectionError("subprotocol %r" % headers.get("sec-websocket-protocol"))
        self.raw = rest

    # -- the socket interface rawmqtt uses
    def fileno(self):
        return self.sock.fileno()

    def setsockopt(self, *a):
        return self.sock.setsockopt(*a)

    def settimeout(self, t):
        return self.sock.settimeout(t)

    def sendall(self, data):
        self.sock.sendall(frame(bytes(data)))

    def send(self, data):
        self.sendall(data)
        return len(data)

    def send_raw(self, data):
        """Wire bytes as they are (malformed frames, split frames)."""
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def shutdown(self, how):
        self.sock.shutdown(how)

    def pending(self):
        """TLS may hold decrypted bytes select() cannot see; the end is known."""
        return self.eof or bool(self.raw) or (hasattr(self.sock, "pending") and self.sock.pending() > 0)

    def recv(self, n):
        """Up to n payload bytes; b"" at the end of the stream (close frame or EOF)."""
        while not self.eof:
            out = self._decode()
            if out or self.eof:
                return out
            chunk = self.sock.recv(max(1, n - len(self.raw)))
            if not chunk:
                self.eof = True
                break
            self.raw += chunk
        return b""

    def _decode(self):
        out = b""
        while self.raw:
            if self.left:
                take = self.raw[:self.left]
                self.raw = self.raw[len(take):]
                self.left -= len(take)
                out += take
                continue
            if len(self.raw) < 2:
                break
            b0, b1 = self.raw[0], self.raw[1]
            if b1 & 0x80:
                raise ConnectionError("masked frame from the server")
            n, i = b1 & 0x7F, 2
            if n == 126:
                if len(self.raw) < 4:
                    break
                n, i = struct.unpack("!H", self.raw[2:4])[0], 4
            elif n == 127:
                if len(self.raw) < 10:
                    break
                n, i = struct.unpack("!Q", self.raw[2:10])[0], 10
            op = b0 & 0x0F
            if op >= 8:
                if len(self.raw) < i + n:
                    break
                payload = self.raw[i:i + n]
                self.raw = self.raw[i + n:]
                if op == 9:
                    self.sock.sendall(frame(payload, opcode=10))
                elif op == 8:
                    self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    try:
                        self.sock.sendall(frame(payload[:2], opcode=8))
                    except OSError:
                        pass
                    self.eof = True
                    return out
                continue
            if op not in (0, 2):
                raise ConnectionError("server sent opcode %d" % op)
            self.raw = self.raw[i:]
            self.left = n
        return out


def connector(tls=False, cafile=None):
    """A connect(host, port, timeout) function for rawmqtt.RawClient."""
    def connect(host, port, timeout):
        return WsSocket(host, port, timeout=timeout, tls=tls, cafile=cafile)
    return connect
