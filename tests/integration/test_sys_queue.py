"""$SYS statistics and offline queueing for persistent sessions.

$SYS topic names follow Mosquitto (`$SYS/broker/uptime`, `.../version`,
`.../clients/connected`, `.../messages/received`), published every sys_interval
seconds. Offline queueing: QoS 1/2 messages for a disconnected persistent session are
kept (MQTT 3.1.1 3.1.2.4, 5.0 3.1.2.4) up to max_queued_messages per client.
"""

import time


import rawmqtt as R
from helpers import V5, Client, both_versions, uid


def sys_values(port, topics, timeout=3.0, until=lambda seen: True):
    """Latest value of each $SYS topic; reads until all are seen and `until(seen)` holds
    (retained $SYS values can be stale until the next interval), or the timeout."""
    c = Client.connected(port)
    for t in topics:
        c.subscribe(t, 0)
    seen = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in c.drain(0.2):
            seen[m.topic] = m.payload.decode()
        if len(seen) == len(topics) and until(seen):
            break
    c.disconnect()
    return seen


def test_sys_uptime_within_interval(broker):
    b = broker(["sys_interval 1"])
    t0 = time.monotonic()
    c = Client.connected(b.port)
    c.subscribe("$SYS/broker/uptime", 0)
    m = c.get(timeout=2.0)
    assert time.monotonic() - t0 <= 2.2
    assert m.topic == "$SYS/broker/uptime"
    first = int(m.payload.split()[0])
    # A fresh value arrives within the next interval (+1 s), and it does not go back.
    m2 = c.get(timeout=2.0)
    assert int(m2.payload.split()[0]) >= first


def test_sys_topics_present(broker):
    b = broker(["sys_interval 1"])
    holders = [Client.connected(b.port) for _ in range(2)]
    holders[0].publish(uid("t"), b"x", qos=1)
    want = ["$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
            "$SYS/broker/messages/received"]
    seen = sys_values(b.port, want, timeout=5.0, until=lambda s: (
        int(s["$SYS/broker/clients/connected"]) >= 3
        and int(s["$SYS/broker/messages/received"]) >= 1))
    assert set(seen) == set(want), seen
    assert seen["$SYS/broker/version"].strip()
    # two holders + the reader itself
    assert int(seen["$SYS/broker/clients/connected"]) >= 3
    assert int(seen["$SYS/broker/messages/received"]) >= 1


def test_sys_bytes_count_the_traffic(broker):
    """$SYS/broker/bytes/received and .../sent count what crossed the connections: a
    10 000-byte publish shows in both (it is received once, and delivered once)."""
    b = broker(["sys_interval 1"])
    sub = Client.connected(b.port)
    topic = uid("bytes")
    sub.subscribe(topic, 0)
    pub = Client.connected(b.port)
    pub.publish(topic, b"x" * 10000, qos=1)
    assert sub.get(timeout=3.0).payload == b"x" * 10000
    want = ["$SYS/broker/bytes/received", "$SYS/broker/bytes/sent"]
    seen = sys_values(b.port, want, timeout=5.0, until=lambda s: all(
        int(s[t]) >= 10000 for t in want))
    assert set(seen) == set(want), seen
    assert all(int(seen[t]) >= 10000 for t in want), seen


def test_sys_not_writable(broker):
    """Clients must not be able to forge $SYS statistics: a retained PUBLISH to a $SYS
    topic is refused (0x87 in MQTT 5), the retained value stays the broker's, and no
    subscriber sees the forged one."""
    b = broker(["sys_interval 1"])
    watcher = Client.connected(b.port)
    watcher.subscribe("$SYS/broker/version", 0)
    genuine = watcher.get(timeout=3.0).payload.decode()
    assert "version" in genuine and genuine != "forged"
    with R.RawClient(b.port, V5) as forger:
        forger.connect(uid())
        ack = forger.publish("$SYS/broker/version", b"forged", qos=1, retain=True)
        assert ack.rc == 0x87, ack
    late = Client.connected(b.port)       # retained state after the refused publish
    late.subscribe("$SYS/broker/version", 0)
    assert late.get(timeout=3.0).payload.decode() == genuine
    # a forged delivery would have left with the refusal: the watcher has none
    assert all(m.payload != b"forged" for m in watcher.drain(0.3))


def persistent(v):
    if v == V5:
        return dict(clean=False, props={"session_expiry_interval": 300})
    return dict(clean=False)


def go_offline(port, v, cid, topic, qos=1):
    with R.RawClient(port, v) as c:
        c.connect(cid, **persistent(v))
        c.subscribe([(topic, qos)])
        c.disconnect(0 if v == V5 else None)


@both_versions
def test_offline_queue_delivered_on_reconnect(srv, v):
    cid, t = uid(), uid("t")
    go_offline(srv.port, v, cid, t)
    pub = Client.connected(srv.port, version=v)
    for i in range(5):
        pub.publish(t, b"%d" % i, qos=1)
    pub.publish(t, b"qos2", qos=2)
    with R.RawClient(srv.port, v) as c:
        assert c.connect(cid, **persistent(v)).session_present
        got = [c.recv_publish() for _ in range(6)]
        c.expect_nothing(0.4)
    assert [p.payload for p in got] == [b"0", b"1", b"2", b"3", b"4", b"qos2"]
    assert [p.qos for p in got] == [1] * 6


@both_versions
def test_offline_queue_limit(broker, v):
    """max_queued_messages 3: a session that is offline keeps at most 3 messages; the
    excess is dropped (which ones is the broker's choice; order is preserved)."""
    b = broker(["max_queued_messages 3"])
    cid, t = uid(), uid("t")
    go_offline(b.port, v, cid, t)
    pub = Client.connected(b.port, version=v)
    sent = [b"%d" % i for i in range(10)]
    for p in sent:
        pub.publish(t, p, qos=1)
    with R.RawClient(b.port, v) as c:
        assert c.connect(cid, **persistent(v)).session_present
        got = []
        try:
            while True:
                got.append(c.recv_publish(timeout=0.8).payload)
        except AssertionError:
            pass
    assert len(got) == 3, got
    assert got == sorted(got, key=int) and set(got) <= set(sent)


@both_versions
def test_offline_qos0_subscription_not_queued_as_qos1(srv, v):
    """Messages for a QoS 0 subscription may be dropped while offline; if queued they
    are delivered at QoS 0."""
    cid, t = uid(), uid("t")
    go_offline(srv.port, v, cid, t, qos=0)
    pub = Client.connected(srv.port, version=v)
    pub.publish(t, b"x", qos=1)
    with R.RawClient(srv.port, v) as c:
        c.connect(cid, **persistent(v))
        try:
            p = c.recv(0.6)
        except R.Timeout:
            return
        assert p.type == R.PUBLISH and p.qos == 0
