"""Byte-exact MQTT 3.1.1 / 5.0 client for the integration tests.

This module owns a small, independent encoder/decoder of MQTT control packets and a
blocking socket client built on it. It exists because third-party clients hide exactly
what the robustness and conformance tests need to see or to break: the CONNACK bytes,
reason codes, the session-present flag, the DUP bit on redelivery, and malformed input.

Invariants:
- Every receive has a timeout; nothing here can block a test forever.
- The decoder is strict: a packet from the broker that does not parse is a test failure
  (ProtocolError), never silently accepted.
- Builders return plain bytes, so a test can corrupt them before sending.
It is written from the MQTT 3.1.1 (OASIS 2014) and 5.0 (OASIS 2019) specifications.
"""

import select
import socket
import struct
import time

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
         6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
         11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# MQTT 5.0 section 2.2.2.2: identifier -> (name, wire type)
PROPS = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"),
    0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"),
    0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"),
    0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROP_IDS = {name: (pid, typ) for pid, (name, typ) in PROPS.items()}
# Properties that may appear more than once decode to lists.
MULTI = {"user_property", "subscription_identifier"}


class ProtocolError(Exception):
    """The broker sent bytes that are not a valid MQTT packet."""


class Closed(Exception):
    """The broker closed the connection."""


class Timeout(Exception):
    """Nothing arrived in time."""


# ---------------------------------------------------------------- encoding

def varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("variable byte integer out of range")
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def mstr(s):
    """UTF-8 string with 2-byte length; bytes are sent as given (for invalid UTF-8)."""
    b = s if isinstance(s, (bytes, bytearray)) else s.encode("utf-8")
    return u16(len(b)) + bytes(b)


def properties(props):
    """Encode a dict of properties (None -> empty). Repeatable ones take lists."""
    if not props:
        return varint(0)
    body = bytearray()
    for name, value in props.items():
        pid, typ = PROP_IDS[name]
        values = value if (name in MULTI and isinstance(value, list)) else [value]
        for v in values:
            body += varint(pid)
            if typ == "byte":
                body.append(v)
            elif typ == "u16":
                body += u16(v)
            elif typ == "u32":
                body += u32(v)
            elif typ == "varint":
                body += varint(v)
            elif typ in ("str", "bin"):
                body += mstr(v)
            elif typ == "pair":
                body += mstr(v[0]) + mstr(v[1])
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + bytes(body)


def connect(client_id="", version=4, clean=True, keepalive=60, props=None,
            will=None, username=None, password=None, proto_name="MQTT"):
    """CONNECT. will = dict(topic, payload, qos=0, retain=False, props=None)."""
    flags = 0
    if clean:
        flags |= 0x02
    payload = mstr(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if version == 5:
            payload += properties(will.get("props"))
        payload += mstr(will["topic"]) + mstr(will.get("payload", b""))
    if username is not None:
        flags |= 0x80
        payload += mstr(username)
    if password is not None:
        flags |= 0x40
        payload += mstr(password)
    var = mstr(proto_name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        var += properties(props)
    return packet(CONNECT, 0, var + payload)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=None,
            version=4):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    var = mstr(topic)
    if qos > 0:
        var += u16(pid if pid is not None else 1)
    if version == 5:
        var += properties(props)
    return packet(PUBLISH, flags, var + payload)


def ack(ptype, pid, rc=None, props=None, version=4):
    """PUBACK/PUBREC/PUBREL/PUBCOMP. PUBREL carries the mandatory flags 0b0010."""
    body = u16(pid)
    if version == 5 and (rc is not None or props):
        body += bytes([rc or 0])
        if props:
            body += properties(props)
    return packet(ptype, 2 if ptype == PUBREL else 0, body)


def subscribe(pid, filters, props=None, version=4):
    """filters: list of (filter, options_byte) or filter strings (QoS 0)."""
    body = u16(pid)
    if version == 5:
        body += properties(props)
    for f in filters:
        if isinstance(f, str):
            f = (f, 0)
        body += mstr(f[0]) + bytes([f[1]])
    return packet(SUBSCRIBE, 2, body)


def sub_opts(qos=0, no_local=False, rap=False, rh=0):
    return qos | (4 if no_local else 0) | (8 if rap else 0) | (rh << 4)


def unsubscribe(pid, filters, props=None, version=4):
    body = u16(pid)
    if version == 5:
        body += properties(props)
    for f in filters:
        body += mstr(f)
    return packet(UNSUBSCRIBE, 2, body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(rc=None, props=None, version=4):
    body = b""
    if version == 5 and (rc is not None or props):
        body = bytes([rc or 0]) + (properties(props) if props else b"")
    return packet(DISCONNECT, 0, body)


def auth(rc=0, props=None):
    return packet(AUTH, 0, bytes([rc]) + properties(props))


# ---------------------------------------------------------------- decoding

class Reader:
    def __init__(self, data):
        self.d = bytes(data)
        self.i = 0

    def left(self):
        return len(self.d) - self.i

    def take(self, n):
        if self.left() < n:
            raise ProtocolError("truncated field")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def varint(self):
        n, mult = 0, 1
        for _ in range(4):
            b = self.byte()
            n += (b & 0x7F) * mult
            if not b & 0x80:
                return n
            mult *= 128
        raise ProtocolError("variable byte integer longer than 4 bytes")

    def bin(self):
        return self.take(self.u16())

    def str(self):
        b = self.bin()
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("broker sent invalid UTF-8: %r" % b) from e

    def props(self):
        n = self.varint()
        end = self.i + n
        if end > len(self.d):
            raise ProtocolError("property length beyond packet")
        out = {}
        while self.i < end:
            pid = self.varint()
            if pid not in PROPS:
                raise ProtocolError("unknown property 0x%02x" % pid)
            name, typ = PROPS[pid]
            if typ == "byte":
                v = self.byte()
            elif typ == "u16":
                v = self.u16()
            elif typ == "u32":
                v = self.u32()
            elif typ == "varint":
                v = self.varint()
            elif typ == "str":
                v = self.str()
            elif typ == "bin":
                v = self.bin()
            else:
                v = (self.str(), self.str())
            if name in MULTI:
                out.setdefault(name, []).append(v)
            elif name in out:
                raise ProtocolError("property %s repeated" % name)
            else:
                out[name] = v
        if self.i != end:
            raise ProtocolError("property list overran its length")
        return out


class Packet:
    """A decoded control packet. Fields present depend on the type."""

    def __init__(self, ptype, flags, body, raw, version):
        self.type, self.flags, self.body, self.raw = ptype, flags, body, raw
        self.props = {}
        self.rc = 0
        self.pid = None
        r = Reader(body)
        v5 = version == 5
        if ptype == CONNACK:
            ack_flags = r.byte()
            if ack_flags & 0xFE:
                raise ProtocolError("CONNACK reserved flags set")
            self.session_present = bool(ack_flags & 1)
            self.rc = r.byte()
            if r.left():
                self.props = r.props()
        elif ptype == PUBLISH:
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            self.dup = bool(flags & 8)
            if self.qos == 3:
                raise ProtocolError("PUBLISH with QoS 3")
            self.topic = r.str()
            if self.qos:
                self.pid = r.u16()
            if v5:
                self.props = r.props()
            self.payload = r.take(r.left())
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = r.u16()
            if r.left():
                self.rc = r.byte()
            if r.left():
                self.props = r.props()
        elif ptype == SUBACK:
            self.pid = r.u16()
            if v5:
                self.props = r.props()
            self.codes = list(r.take(r.left()))
        elif ptype == UNSUBACK:
            self.pid = r.u16()
            self.codes = []
            if v5:
                self.props = r.props()
                self.codes = list(r.take(r.left()))
        elif ptype in (DISCONNECT, AUTH):
            if r.left():
                self.rc = r.byte()
            if r.left():
                self.props = r.props()
        elif ptype == PINGRESP:
            pass
        else:
            raise ProtocolError("broker sent a %s" % NAMES.get(ptype, ptype))
        if r.left():
            raise ProtocolError("%d trailing bytes in %s" % (r.left(), self.name))

    @property
    def name(self):
        return NAMES.get(self.type, str(self.type))

    def __repr__(self):
        extra = ""
        if self.type == PUBLISH:
            extra = " topic=%r qos=%d retain=%d dup=%d payload=%r" % (
                self.topic, self.qos, self.retain, self.dup, self.payload[:40])
        if self.pid is not None:
            extra += " pid=%d" % self.pid
        return "<%s rc=0x%02x%s props=%r>" % (self.name, self.rc, extra, self.props)


# ---------------------------------------------------------------- client

def tcp_connect(host, port, timeout):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


# How RawClient connects: plain TCP, or what the suite's --transport chose
# (conftest.py sets a WebSocket connector from wsclient.py for ws / wss).
open_connection = tcp_connect


class RawClient:
    """One connection speaking raw MQTT (TCP, or the suite's --transport). version: 4 or 5."""

    def __init__(self, port, version=4, host="127.0.0.1", timeout=5.0):
        self.version = version
        self.sock = open_connection(host, port, timeout)
        self.buf = b""
        self.closed = False
        self.next_pid = 1
        self.pending = []   # packets read ahead while waiting for a specific one

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def pid(self):
        p = self.next_pid
        self.next_pid = p % 65535 + 1
        return p

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes into the buffer; raise Closed on EOF, Timeout at deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout()
        # a TLS or WebSocket layer may hold bytes that select() cannot see
        held = hasattr(self.sock, "pending") and self.sock.pending()
        ready = held or select.select([self.sock], [], [], remaining)[0]
        if not ready:
            raise Timeout()
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk

    def recv(self, timeout=5.0):
        """Next packet, or raise Timeout / Closed."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._parse_buffer()
            if pkt is not None:
                return pkt
            if self.closed:
                raise Closed()
            self._fill(deadline)

    def _parse_buffer(self):
        if len(self.buf) < 2:
            return None
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            i += 1
            if not b & 0x80:
                break
            mult *= 128
            if i > 4:
                raise ProtocolError("bad remaining length from broker")
        if len(self.buf) < i + length:
            return None
        raw = self.buf[:i + length]
        self.buf = self.buf[i + length:]
        return Packet(raw[0] >> 4, raw[0] & 0x0F, raw[i:], raw, self.version)

    def expect(self, ptype, timeout=5.0):
        try:
            p = self.recv(timeout)
        except Timeout:
            raise AssertionError("expected %s, got nothing in %.1fs" % (NAMES[ptype], timeout))
        except Closed:
            raise AssertionError("expected %s, connection closed" % NAMES[ptype])
        assert p.type == ptype, "expected %s, got %r" % (NAMES[ptype], p)
        return p

    def expect_nothing(self, duration=0.5):
        """Assert that no packet arrives for `duration` seconds (connection stays up)."""
        try:
            p = self.recv(duration)
        except Timeout:
            return
        except Closed:
            raise AssertionError("connection closed unexpectedly")
        raise AssertionError("unexpected packet %r" % p)

    def wait_closed(self, timeout=5.0):
        """Assert the broker closes the connection within `timeout`.

        Returns the packets received before the close (e.g. a v5 DISCONNECT)."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except Timeout:
                raise AssertionError("broker did not close the connection within %.1fs "
                                     "(received %r)" % (timeout, got))

    def is_open(self, timeout=0.3):
        """True if the connection is still open after `timeout` (drains packets)."""
        try:
            self.recv(timeout)
            return True
        except Timeout:
            return True
        except Closed:
            return False

    # -- high-level helpers (all assert the protocol flow)

    def connect(self, client_id="", clean=True, keepalive=60, props=None, will=None,
                username=None, password=None, expect_rc=0, timeout=5.0):
        self.send(connect(client_id, self.version, clean, keepalive, props, will,
                          username, password))
        p = self.expect(CONNACK, timeout)
        if expect_rc is not None:
            assert p.rc == expect_rc, "CONNACK rc=0x%02x, expected 0x%02x (%r)" % (
                p.rc, expect_rc, p)
        return p

    def subscribe(self, filters, props=None, timeout=5.0):
        """filters: list of (filter, options) or a single filter string. Returns SUBACK."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        pid = self.pid()
        self.send(subscribe(pid, filters, props, self.version))
        p = self.expect(SUBACK, timeout)
        assert p.pid == pid, "SUBACK for packet id %d, expected %d" % (p.pid, pid)
        assert len(p.codes) == len(filters)
        return p

    def unsubscribe(self, filters, props=None, timeout=5.0):
        pid = self.pid()
        self.send(unsubscribe(pid, filters, props, self.version))
        p = self.expect(UNSUBACK, timeout)
        assert p.pid == pid
        return p

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, pid=None,
                timeout=5.0):
        """Publish and complete the QoS flow. Returns the PUBACK / PUBCOMP (or None)."""
        if qos and pid is None:
            pid = self.pid()
        self.send(publish(topic, payload, qos, retain, False, pid, props, self.version))
        if qos == 1:
            p = self.expect(PUBACK, timeout)
            assert p.pid == pid
            return p
        if qos == 2:
            rec = self.expect(PUBREC, timeout)
            assert rec.pid == pid
            if rec.rc >= 0x80:
                return rec
            self.send(ack(PUBREL, pid, version=self.version))
            comp = self.expect(PUBCOMP, timeout)
            assert comp.pid == pid
            return rec if rec.rc else comp
        return None

    def recv_publish(self, timeout=5.0, auto_ack=True):
        """Next PUBLISH (skipping nothing else: any other packet is an error)."""
        p = self.expect(PUBLISH, timeout)
        if auto_ack:
            self.ack_publish(p)
        return p

    def ack_publish(self, p):
        if p.qos == 1:
            self.send(ack(PUBACK, p.pid, version=self.version))
        elif p.qos == 2:
            self.send(ack(PUBREC, p.pid, version=self.version))
            self.wait_pubrel(p.pid)
            self.send(ack(PUBCOMP, p.pid, version=self.version))

    def wait_pubrel(self, pid, timeout=5.0):
        """Wait for PUBREL(pid), keeping any PUBLISH that arrives meanwhile for later."""
        deadline = time.monotonic() + timeout
        held = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no PUBREL for packet id %d" % pid)
                try:
                    q = self._recv_fresh(left)
                except Timeout:
                    raise AssertionError("no PUBREL for packet id %d" % pid)
                except Closed:
                    raise AssertionError("closed while waiting for PUBREL %d" % pid)
                if q.type == PUBREL and q.pid == pid:
                    return q
                held.append(q)
        finally:
            self.pending.extend(held)

    def _recv_fresh(self, timeout):
        saved, self.pending = self.pending, []
        try:
            return self.recv(timeout)
        finally:
            self.pending = saved + self.pending

    def ping(self, timeout=5.0):
        self.send(pingreq())
        self.expect(PINGRESP, timeout)

    def disconnect(self, rc=None, props=None):
        try:
            self.send(disconnect(rc, props, self.version))
        except OSError:
            pass
        self.close()
