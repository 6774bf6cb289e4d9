"""The WebSocket listener (protocol websockets) from a raw socket: the HTTP upgrade and
its refusals, RFC 6455 framing (split, joined and fragmented packets, ping/pong, close),
malformed frames, http_dir, websockets_origin, and the configuration keys.

Each test declares its own WebSocket listener, so the module runs the same whatever the
suite's --transport (and is skipped for ws/wss runs, which would only repeat it). Every
refusal is checked three ways: what the client receives (HTTP status or close frame with
its status code), that the connection ends, and the broker's log line saying why.
"""

import os
import socket
import struct
import subprocess
import time

import pytest

import rawmqtt as R
import wsclient as W
from conftest import broker_command, free_port
from helpers import uid, wait_for

V311, V5 = 4, 5


@pytest.fixture
def wsb(broker):
    """A broker whose only listener is a WebSocket one (extra lines appended)."""
    def make(*extra, kind_lines=()):
        port = free_port()
        lines = list(kind_lines) + ["listener %d 127.0.0.1" % port, "protocol websockets"]
        return broker(lines + list(extra), with_listener=False, port=port)
    return make


def ws(b, protocol="mqtt"):
    return W.WsSocket("127.0.0.1", b.port, protocol=protocol)


def raw_client(sock, version=V311):
    """A rawmqtt client over an already connected socket-like object."""
    c = R.RawClient.__new__(R.RawClient)
    c.version, c.sock, c.buf, c.closed, c.next_pid, c.pending = version, sock, b"", False, 1, []
    return c


def http(b, request, timeout=5.0):
    """Send raw request bytes; return (status, headers, body) of the answer, and whether
    the broker closed the connection after it."""
    s = socket.create_connection(("127.0.0.1", b.port), timeout=timeout)
    try:
        s.sendall(request)
        status, headers, rest = W.read_head(s)
        body = rest
        closed = False
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            body += chunk
        return status, headers, body, closed
    finally:
        s.close()


def logged(b, text, timeout=5.0):
    wait_for(lambda: text in b.log(), timeout, what="broker log line %r" % text)


def closed_with(sock, timeout=5.0):
    """Read until the broker's close frame and the end of the stream; its status code."""
    sock.settimeout(timeout)
    while sock.recv(65536):
        pass
    return sock.close_code


# ---------------------------------------------------------------- upgrade

def test_upgrade_then_mqtt(wsb):
    b = wsb()
    s = ws(b)
    c = raw_client(s)
    c.connect(uid())
    c.ping()
    assert b.log().count("listening on") == 1 and "(ws)" in b.log()


def test_old_clients_get_mqttv31(wsb):
    b = wsb()
    s = ws(b, protocol="mqttv3.1")   # WsSocket checks the answer names mqttv3.1
    raw_client(s).connect(uid())


def test_prefers_mqtt_when_both_offered(wsb):
    b = wsb()
    req, key = W.upgrade_request("127.0.0.1", b.port, protocol="mqttv3.1, mqtt")
    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    s.sendall(req)
    status, headers, _ = W.read_head(s)
    s.close()
    assert status == 101
    assert headers["sec-websocket-protocol"] == "mqtt"
    assert headers["sec-websocket-accept"] == W.accept_for(key)


def test_frames_sent_with_the_upgrade_are_kept(wsb):
    """A client may send its first frames right behind the request head."""
    b = wsb()
    req, _ = W.upgrade_request("127.0.0.1", b.port)
    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    s.sendall(req + W.frame(R.connect(uid())) + W.frame(R.pingreq()))
    status, _, rest = W.read_head(s)
    assert status == 101
    w = W.WsSocket.__new__(W.WsSocket)
    w.sock, w.raw, w.left, w.eof, w.close_code = s, rest, 0, False, None
    c = raw_client(w)
    assert c.expect(R.CONNACK).rc == 0
    c.expect(R.PINGRESP)


BASE_FIELDS = [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
               ("Sec-WebSocket-Protocol", "mqtt")]


def head(method="GET", version="HTTP/1.1", drop=(), set=(), add=(), target="/mqtt"):
    """An upgrade request head: BASE_FIELDS without `drop`, with `set` values, plus `add`."""
    values = dict(set)
    fields = [(k, values.get(k, v)) for k, v in BASE_FIELDS if k not in drop] + list(add)
    lines = ["%s %s %s" % (method, target, version)] + ["%s: %s" % f for f in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


BAD_UPGRADES = [
    # (name, request head, status, log text)
    ("post", head(method="POST"), 405, "method POST not allowed"),
    ("http10", head(version="HTTP/1.0"), 505, "only HTTP/1.1"),
    ("no key", head(drop=["Sec-WebSocket-Key"]), 400, "Sec-WebSocket-Key"),
    ("short key", head(set={"Sec-WebSocket-Key": "c2hvcnQ="}), 400, "Sec-WebSocket-Key"),
    ("two keys", head(add=[("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]), 400, "repeated"),
    ("version 8", head(set={"Sec-WebSocket-Version": "8"}), 426, "Sec-WebSocket-Version"),
    ("no subprotocol", head(drop=["Sec-WebSocket-Protocol"]), 400, "no MQTT subprotocol"),
    ("other subprotocol", head(set={"Sec-WebSocket-Protocol": "chat"}), 400, "no MQTT subprotocol"),
    ("upgrade h2c", head(set={"Upgrade": "h2c"}), 400, "Upgrade is not websocket"),
    ("no connection upgrade", head(set={"Connection": "keep-alive"}), 400,
     "Connection does not include upgrade"),
    ("no host", head(drop=["Host"]), 400, "no Host"),
    ("folded header", b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n  more\r\n\r\n",
     400, "obsolete line folding"),
    ("bare LF", b"GET /mqtt HTTP/1.1\nHost: x\n\r\n\r\n", 400, "bare CR or LF"),
    ("space before colon", b"GET /mqtt HTTP/1.1\r\nHost : x\r\n\r\n", 400,
     "malformed header field name"),
    ("absolute target", head(target="http://x/mqtt"), 400, "origin-form only"),
    ("body", head(add=[("Content-Length", "5")]) + b"hello", 400, "request with a body"),
    ("mqtt connect", R.connect("x"), 400, "not an HTTP request"),
    ("tls hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "not an HTTP request"),
]


@pytest.mark.tmqtt_only
@pytest.mark.parametrize("name,req,status,why", BAD_UPGRADES, ids=[x[0] for x in BAD_UPGRADES])
def test_bad_upgrade_refused(wsb, name, req, status, why):
    b = wsb()
    got, headers, body, closed = http(b, req)
    assert got == status, (got, body)
    assert closed, "connection left open after %d" % status
    assert headers.get("connection") == "close"
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    logged(b, why)
    b.assert_running()


@pytest.mark.tmqtt_only
def test_oversize_head_refused(wsb):
    b = wsb("websockets_headers_size 1024")
    req, _ = W.upgrade_request("127.0.0.1", b.port, extra=["Cookie: " + "a" * 1100])
    status, _, _, closed = http(b, req)
    assert status == 431 and closed
    logged(b, "larger than websockets_headers_size")
    # the same request fits the default limit (4096)
    b2 = wsb()
    s = socket.create_connection(("127.0.0.1", b2.port), timeout=5)
    s.sendall(req)
    assert W.read_head(s)[0] == 101
    s.close()


@pytest.mark.tmqtt_only
def test_too_many_header_fields(wsb):
    b = wsb("websockets_headers_size 8192")
    req, _ = W.upgrade_request("127.0.0.1", b.port, extra=["X-%d: y" % i for i in range(60)])
    status, _, _, closed = http(b, req)
    assert status == 431 and closed
    logged(b, "too many header fields")


@pytest.mark.tmqtt_only
def test_slow_upgrade_times_out(wsb):
    b = wsb("handshake_timeout 1")
    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")   # never finished
    t0 = time.monotonic()
    assert s.recv(100) == b""
    assert time.monotonic() - t0 < 4
    s.close()
    logged(b, "no transport handshake in time")


@pytest.mark.tmqtt_only
def test_origin_allowed_and_refused(wsb):
    b = wsb("websockets_origin https://dash.example:8443", "websockets_origin http://localhost:9001")
    for origin, status in (("https://dash.example:8443", 101), ("http://LOCALHOST:9001", 101),
                           ("https://evil.example", 403), (None, 403)):
        extra = ["Origin: " + origin] if origin else []
        req, _ = W.upgrade_request("127.0.0.1", b.port, extra=extra)
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        s.sendall(req)
        assert W.read_head(s)[0] == status, origin
        s.close()
    logged(b, "origin 'https://evil.example' not in websockets_origin")
    logged(b, "no Origin and websockets_origin is set")


# ---------------------------------------------------------------- framing

def connected(b, version=V311):
    s = ws(b)
    c = raw_client(s, version)
    c.connect(uid())
    return s, c


def test_packet_split_across_frames_and_segments(wsb):
    b = wsb()
    s = ws(b)
    c = raw_client(s)
    pkt = R.connect(uid())
    wire = b"".join(W.frame(pkt[i:i + 3]) for i in range(0, len(pkt), 3))
    for i in range(len(wire)):             # one byte per TCP segment
        s.send_raw(wire[i:i + 1])
    assert c.expect(R.CONNACK).rc == 0


def test_several_packets_in_one_frame(wsb):
    b = wsb()
    s = ws(b)
    c = raw_client(s)
    topic = "ws/" + uid()
    s.send_raw(W.frame(R.connect(uid()) + R.subscribe(1, [(topic, 1)]) +
                       R.publish(topic, b"hello", qos=1, pid=2) + R.pingreq()))
    assert c.expect(R.CONNACK).rc == 0
    got = [c.recv() for _ in range(4)]
    types = sorted(p.type for p in got)
    assert types == sorted([R.SUBACK, R.PUBACK, R.PUBLISH, R.PINGRESP]), got
    pub = [p for p in got if p.type == R.PUBLISH][0]
    assert pub.payload == b"hello"


def test_large_packet_many_frames_and_back(wsb):
    """A 300 kB PUBLISH in 7 kB frames; the broker's copy comes back in its own frames."""
    b = wsb()
    s, c = connected(b)
    topic = "ws/" + uid()
    c.subscribe(topic)
    payload = os.urandom(300000)
    pkt = R.publish(topic, payload)
    s.send_raw(b"".join(W.frame(pkt[i:i + 7000]) for i in range(0, len(pkt), 7000)))
    assert c.expect(R.PUBLISH, timeout=10).payload == payload


def test_fragmented_message_with_ping_between(wsb):
    b = wsb()
    s = ws(b)
    c = raw_client(s)
    pkt = R.connect(uid())
    s.send_raw(W.frame(pkt[:4], fin=False) + W.frame(b"are you there", opcode=9) +
               W.frame(pkt[4:9], opcode=0, fin=False) + W.frame(pkt[9:], opcode=0, fin=True))
    # the pong is answered inside WsSocket; read it from the wire instead
    s.sock.settimeout(5)
    wire = b""
    while b"are you there" not in wire or len(wire) < 2 + 13 + 4:
        wire += s.sock.recv(4096)
    assert wire.startswith(b"\x8a\x0dare you there"), wire
    s.raw = wire[15:]
    assert c.expect(R.CONNACK).rc == 0


def test_empty_frames_are_harmless(wsb):
    b = wsb()
    s, c = connected(b)
    s.send_raw(W.frame(b"") + W.frame(b"", opcode=10) + W.frame(R.pingreq()))
    c.expect(R.PINGRESP)


def test_client_close_is_answered(wsb):
    b = wsb()
    s, c = connected(b)
    s.send_raw(W.frame(struct.pack("!H", 1000) + b"bye", opcode=8))
    assert closed_with(s) == 1000
    b.assert_running()


def test_graceful_close_sends_close_1000(wsb):
    """The broker ends a connection (here after the client's DISCONNECT) with a close
    frame 1000 before the TCP close."""
    b = wsb()
    s, c = connected(b)
    c.send(R.disconnect())
    assert closed_with(s) == 1000


BAD_FRAMES = [
    ("unmasked", W.frame(R.pingreq(), mask=False), 1002, "unmasked frame"),
    ("rsv1", W.frame(R.pingreq(), rsv=4), 1002, "reserved bits"),
    ("opcode 3", W.frame(R.pingreq(), opcode=3), 1002, "unknown opcode"),
    ("opcode 11", W.frame(b"", opcode=11), 1002, "unknown opcode"),
    ("text", W.frame(R.pingreq(), opcode=1), 1003, "text frame"),
    ("long ping", W.frame(b"x" * 126, opcode=9), 1002, "control frame longer than 125"),
    ("fragmented ping", W.frame(b"x", opcode=9, fin=False), 1002, "fragmented control frame"),
    ("lone continuation", W.frame(R.pingreq(), opcode=0), 1002, "continuation frame outside"),
    ("binary inside fragments", W.frame(b"\xc0", fin=False) + W.frame(b"\x00"), 1002,
     "new data frame inside a fragmented message"),
    ("non-minimal 16-bit length", b"\x82\xfe\x00\x02" + b"\0\0\0\0" + b"\xc0\x00", 1002,
     "not minimally encoded"),
    ("non-minimal 64-bit length", b"\x82\xff" + struct.pack("!Q", 2) + b"\0\0\0\0\xc0\x00",
     1002, "not minimally encoded"),
    ("64-bit length msb", b"\x82\xff" + struct.pack("!Q", 1 << 63) + b"\0\0\0\0", 1002,
     "most significant bit"),
    ("close one byte", W.frame(b"\x03", opcode=8), 1002, "one-byte payload"),
    ("close code 1005", W.frame(struct.pack("!H", 1005), opcode=8), 1002, "invalid status code"),
    ("close code 999", W.frame(struct.pack("!H", 999), opcode=8), 1002, "invalid status code"),
    ("close reason not utf-8", W.frame(struct.pack("!H", 1000) + b"\xff\xfe", opcode=8), 1007,
     "not UTF-8"),
]


@pytest.mark.tmqtt_only
@pytest.mark.parametrize("name,wire,code,why", BAD_FRAMES, ids=[x[0] for x in BAD_FRAMES])
def test_malformed_frame_closes_with_status(wsb, name, wire, code, why):
    b = wsb()
    s, c = connected(b)
    s.send_raw(wire)
    assert closed_with(s) == code
    logged(b, why)
    b.assert_running()
    # and nothing else: the next client is served
    connected(b)[1].ping()


@pytest.mark.tmqtt_only
def test_malformed_mqtt_inside_valid_frames(wsb):
    """The MQTT layer still judges the bytes: a bad packet type closes as over TCP."""
    b = wsb()
    s, c = connected(b)
    s.sendall(b"\x00\x00")
    c.wait_closed()
    b.assert_running()


# ---------------------------------------------------------------- http_dir

@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    (d / "js").mkdir(parents=True)
    (d / "index.html").write_text("<h1>status</h1>")
    (d / "js" / "app.js").write_text("console.log(1)")
    (d / ".secret").write_text("hidden")
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink(str(tmp_path / "outside.txt"), str(d / "link.txt"))
    return d


def get(b, path):
    return http(b, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())


@pytest.mark.tmqtt_only
def test_http_dir_serves_files(wsb, www):
    b = wsb("http_dir %s" % www)
    status, headers, body, closed = get(b, "/")
    assert (status, body, closed) == (200, b"<h1>status</h1>", True)
    assert headers["content-type"].startswith("text/html")
    status, headers, body, _ = get(b, "/js/app.js?v=1")
    assert status == 200 and body == b"console.log(1)"
    assert headers["content-type"].startswith("text/javascript")
    assert headers["content-length"] == str(len(body))
    logged(b, "HTTP GET /js/app.js: 200")
    # the same listener still upgrades
    raw_client(ws(b)).connect(uid())


@pytest.mark.tmqtt_only
@pytest.mark.parametrize("path", ["/../www/index.html", "/%2e%2e/outside.txt", "/js/../index.html",
                                  "/.secret", "/link.txt", "/missing.html", "/js", "//etc/passwd",
                                  "/%00index.html", "/js%5c..%5c..%5coutside.txt"])
def test_http_dir_confined(wsb, www, path):
    b = wsb("http_dir %s" % www)
    status, _, body, closed = get(b, path)
    assert status == 404 and closed, (path, status, body)
    assert b"outside" not in body and b"hidden" not in body
    logged(b, "404 Not Found")


@pytest.mark.tmqtt_only
def test_plain_get_without_http_dir(wsb):
    b = wsb()
    status, _, _, closed = get(b, "/index.html")
    assert status == 404 and closed
    logged(b, "no http_dir on this listener")


# ---------------------------------------------------------------- configuration

@pytest.mark.tmqtt_only
@pytest.mark.parametrize("lines,msg", [
    (["protocol http"], "protocol: expected mqtt or websockets"),
    (["http_dir /tmp"], "http_dir needs protocol websockets"),
    (["websockets_origin https://x.example"], "websockets_origin needs protocol websockets"),
    (["protocol websockets", "websockets_origin x.example"], "expected an origin"),
    (["websockets_headers_size 100000"], "out of range"),
])
def test_config_errors(broker_kind, build_dir, tmp_path, lines, msg):
    conf = tmp_path / "bad.conf"
    conf.write_text("listener %d 127.0.0.1\n%s\n" % (free_port(), "\n".join(lines)))
    cmd = broker_command(broker_kind, build_dir, str(conf))
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0 and msg in out, out


def test_websockets_log_level_accepted(wsb):
    b = wsb("websockets_log_level 255", "log_type websockets")
    raw_client(ws(b)).connect(uid())


@pytest.mark.tmqtt_only
def test_wss_listener_serves_native_tls_and_ws(broker, tmp_path):
    """certfile/keyfile on a websockets listener make it wss; the TLS options apply."""
    from atls_support import Pki
    (tmp_path / "pki").mkdir()
    pki = Pki(tmp_path / "pki")
    port = free_port()
    b = broker(["listener %d 127.0.0.1" % port, "protocol websockets",
                "certfile " + pki.cert, "keyfile " + pki.key], with_listener=False, port=port)
    assert "(wss)" in b.log()
    s = W.WsSocket("127.0.0.1", port, tls=True, cafile=pki.ca)
    raw_client(s).connect(uid())
    # a plain-text upgrade on the wss port is refused by TLS, not answered
    with pytest.raises((ConnectionError, OSError)):
        s2 = socket.create_connection(("127.0.0.1", port), timeout=5)
        s2.sendall(W.upgrade_request("127.0.0.1", port)[0])
        W.read_head(s2)
