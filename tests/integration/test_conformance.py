"""Departures from the MQTT specifications found by an independent broker test suite
(issue 18), each pinned by a test that failed before the fix:

- Maximum Packet Size: a PUBLISH too large for the client is discarded "as if it had
  completed sending" [MQTT-3.1.2-25], so the QoS 1/2 flow goes on for the next one;
  checked at the exact byte boundary.
- A CONNACK larger than the client's Maximum Packet Size is never sent: the server
  closes the connection instead [MQTT-3.1.2-24].
- MQTT 3.1 (MQIsdp) has no session-present flag: the acknowledge-flags byte is 0.
- An ACL revoked by a SIGHUP reload also stops messages that were queued before it
  (ACLs are checked at delivery time, queued messages included).
- Mosquitto's `maximum_qos` alias and any positive `message_size_limit`.
"""

import signal

import pytest

import rawmqtt as R
from helpers import V5, V311, Client, uid, wait_for

V31 = 3


def publish_len(topic, payload, qos):
    """Bytes of a v5 PUBLISH as the broker encodes it (no properties)."""
    body = 2 + len(topic) + (2 if qos else 0) + 1 + len(payload)
    return 1 + len(R.varint(body)) + body


@pytest.mark.parametrize("qos", [1, 2])
def test_oversized_publish_does_not_stall_the_flow(srv, qos):
    """[MQTT-3.1.2-25]: with Maximum Packet Size 20, a message too big is skipped and
    the next one, small enough, is delivered (and the one after that too)."""
    t = "a/b"
    with R.RawClient(srv.port, V5) as sub:
        sub.connect(uid(), props={"maximum_packet_size": 20})
        sub.subscribe([(t, qos)])
        pub = Client.connected(srv.port, version=V5)
        pub.publish(t, b"x" * 40, qos=qos)
        pub.publish(t, b"ok1", qos=qos)
        pub.publish(t, b"ok2", qos=qos)
        assert [m.payload for m in receive_flow(sub, 2)] == [b"ok1", b"ok2"]


def receive_flow(sub, n):
    """Receive n PUBLISH packets, completing each QoS 1/2 flow; returns them in order."""
    got, open_rel = [], set()
    while len(got) < n or open_rel:
        p = sub.recv()
        if p.type == R.PUBLISH:
            got.append(p)
            if p.qos == 1:
                sub.send(R.ack(R.PUBACK, p.pid, version=V5))
            elif p.qos == 2:
                sub.send(R.ack(R.PUBREC, p.pid, version=V5))
                open_rel.add(p.pid)
        elif p.type == R.PUBREL:
            assert p.pid in open_rel, "PUBREL for %d, which is not awaiting one" % p.pid
            open_rel.discard(p.pid)
            sub.send(R.ack(R.PUBCOMP, p.pid, version=V5))
        else:
            raise AssertionError("unexpected %r" % p)
    return got


@pytest.mark.mosquitto_xfail("2.0.11 keeps dropped messages in the in-flight window")
@pytest.mark.parametrize("qos", [1, 2])
def test_oversized_publishes_fill_no_window(srv, qos):
    """Dropped messages must not occupy in-flight slots: with Receive Maximum 2, more
    dropped messages than the window still leave room for the next small one."""
    t = "a/b"
    with R.RawClient(srv.port, V5) as sub:
        sub.connect(uid(), props={"maximum_packet_size": 20, "receive_maximum": 2})
        sub.subscribe([(t, qos)])
        pub = Client.connected(srv.port, version=V5)
        for _ in range(5):
            pub.publish(t, b"y" * 30, qos=qos)
        pub.publish(t, b"ok", qos=qos)
        assert sub.expect(R.PUBLISH).payload == b"ok"


@pytest.mark.mosquitto_xfail("2.0.11 sends a PUBLISH one byte over the client's maximum")
def test_maximum_packet_size_exact_boundary(srv):
    """A packet of exactly Maximum Packet Size bytes is sent; one byte more is not."""
    t = "a/b"
    limit = 20
    fits = b"f" * (limit - publish_len(t, b"", 1))
    assert publish_len(t, fits, 1) == limit
    with R.RawClient(srv.port, V5) as sub:
        sub.connect(uid(), props={"maximum_packet_size": limit})
        sub.subscribe([(t, 1)])
        pub = Client.connected(srv.port, version=V5)
        pub.publish(t, fits + b"!", qos=1)     # limit + 1: dropped
        pub.publish(t, fits, qos=1)            # exactly the limit: delivered
        p = sub.expect(R.PUBLISH)
        assert p.payload == fits
        assert len(p.raw) == limit
        sub.send(R.ack(R.PUBACK, p.pid, version=V5))
        sub.expect_nothing(0.3)


def test_connack_larger_than_client_maximum_is_not_sent(srv):
    """[MQTT-3.1.2-24]: Maximum Packet Size 2 leaves no room for any CONNACK: the broker
    closes the connection without sending one."""
    with R.RawClient(srv.port, V5) as c:
        c.send(R.connect(uid(), version=5, props={"maximum_packet_size": 2}))
        got = c.wait_closed()
        assert got == [], "broker sent %r to a client whose maximum is 2 bytes" % got
    srv.assert_running()
    with R.RawClient(srv.port, V5) as c:     # others are unaffected
        c.connect(uid())


def test_mqtt31_session_present_is_zero(srv):
    """MQTT 3.1: the first CONNACK byte is reserved; a resumed session must not set it."""
    cid = uid()[:20]
    for _ in range(2):
        with R.RawClient(srv.port, V31) as c:
            c.send(R.connect(cid, version=3, clean=False, proto_name="MQIsdp"))
            ack = c.expect(R.CONNACK)
            assert ack.raw[2] == 0, "3.1 CONNACK flags byte is %#x" % ack.raw[2]
            assert ack.rc == 0
            c.send(R.disconnect())


def test_mqtt311_session_present_still_set(srv):
    """The 3.1 fix must not lose 3.1.1's session-present flag."""
    cid = uid()
    with R.RawClient(srv.port, V311) as c:
        assert c.connect(cid, clean=False).raw[2] == 0
        c.send(R.disconnect())
    with R.RawClient(srv.port, V311) as c:
        assert c.connect(cid, clean=False).raw[2] == 1


ACL_OPEN = "user alice\ntopic readwrite news/#\n"
ACL_REVOKED = "user alice\ntopic readwrite other/#\n"


def queue_for_offline_alice(broker, tmp_path):
    """A broker with ACL_OPEN, and a persistent session of alice's holding one queued
    QoS 1 message on news/a. Returns (broker, acl path, client id)."""
    acl = tmp_path / "acl"
    acl.write_text(ACL_OPEN)
    b = broker(["allow_anonymous true", "acl_file %s" % acl])
    cid = uid()
    with R.RawClient(b.port, V311) as c:
        c.connect(cid, clean=False, username="alice")
        c.subscribe([("news/#", 1)])
        c.send(R.disconnect())
    with R.RawClient(b.port, V311) as p:
        p.connect(uid(), username="alice")
        p.publish("news/a", b"queued", qos=1)
        p.send(R.disconnect())
    return b, acl, cid


@pytest.mark.native_only("WASI has no signals: the Wasm broker cannot be told to reload")
def test_acl_revocation_reaches_queued_messages(broker, tmp_path):
    """A message queued for an offline persistent session while the ACL allowed it is
    not delivered once a SIGHUP reload has revoked read access to its topic."""
    b, acl, cid = queue_for_offline_alice(broker, tmp_path)
    acl.write_text(ACL_REVOKED)
    mark = "Reloading config" if b.kind == "mosquitto" else "reloaded"
    before = b.log().count(mark)
    b.signal(signal.SIGHUP)
    wait_for(lambda: b.log().count(mark) > before, what="ACL reload logged")
    with R.RawClient(b.port, V311) as c:
        assert c.connect(cid, clean=False, username="alice").raw[2] == 1
        c.expect_nothing(0.5)


def test_acl_allows_queued_messages_when_unchanged(broker, tmp_path):
    """Counterpart of the test above: without the revocation the message arrives."""
    b, _, cid = queue_for_offline_alice(broker, tmp_path)
    with R.RawClient(b.port, V311) as c:
        c.connect(cid, clean=False, username="alice")
        assert c.recv_publish().payload == b"queued"


@pytest.mark.tmqtt_only("checks tmqtt's configuration keys")
def test_maximum_qos_alias(broker):
    """Mosquitto's `maximum_qos` is accepted and means what `max_qos` means."""
    b = broker(["maximum_qos 1"])
    with R.RawClient(b.port, V5) as c:
        assert c.connect(uid()).props.get("maximum_qos") == 1


@pytest.mark.tmqtt_only("checks tmqtt's configuration keys")
def test_message_size_limit_any_positive_value(broker):
    """`message_size_limit 1` is accepted (Mosquitto accepts any positive value) and drops
    every PUBLISH whose payload is larger; an empty payload still passes."""
    b = broker(["message_size_limit 1"])
    assert "message_size_limit" in b.log()
    t = "a/b"
    with R.RawClient(b.port, V311) as sub:
        sub.connect(uid())
        sub.subscribe([(t, 0)])
        with R.RawClient(b.port, V311) as pub:
            pub.connect(uid())
            pub.send(R.publish(t, b"x"))
            pub.send(R.publish(t, b"xy"))
            pub.send(R.publish(t, b"z"))
        assert sub.recv_publish().payload == b"x"
        assert sub.recv_publish().payload == b"z"


# ---- choices where the specification lets brokers differ (docs/mqtt-conformance.md)

@pytest.mark.tmqtt_only("pins tmqtt's documented choice")
def test_choice_v5_protocol_error_gets_disconnect_with_reason(srv):
    """MQTT 5.0 4.13.1: on a protocol error after CONNECT the server SHOULD send a
    DISCONNECT with the reason code: tmqtt does, then closes."""
    with R.RawClient(srv.port, V5) as c:
        c.connect(uid())
        c.send(R.connect(uid(), version=5))          # a second CONNECT
        got = c.wait_closed()
        assert [(p.type, p.rc) for p in got] == [(R.DISCONNECT, 0x82)], got


@pytest.mark.tmqtt_only("pins tmqtt's documented choice")
def test_choice_v5_bad_connect_gets_connack_with_reason(srv):
    """4.13.1: an error in CONNECT MAY get a CONNACK with the reason: tmqtt sends it."""
    with R.RawClient(srv.port, V5) as c:
        bad = bytearray(R.connect(uid(), version=5))
        bad[9] |= 0x01                                # reserved connect flag set
        c.send(bytes(bad))
        got = c.wait_closed()
        assert [(p.type, p.rc) for p in got] == [(R.CONNACK, 0x81)], got


@pytest.mark.tmqtt_only("pins tmqtt's documented choice")
def test_choice_ack_of_the_wrong_type_is_ignored(srv):
    """A PUBCOMP for a packet id that awaits a PUBACK is ignored (logged), not a
    protocol error: the flow goes on once the right acknowledgement comes."""
    t = "a/b"
    with R.RawClient(srv.port, V5) as sub:
        sub.connect(uid())
        sub.subscribe([(t, 1)])
        with R.RawClient(srv.port, V5) as pub:
            pub.connect(uid())
            pub.publish(t, b"one", qos=1)
        p = sub.expect(R.PUBLISH)
        sub.send(R.ack(R.PUBCOMP, p.pid, version=V5))
        assert sub.is_open(0.3)
        sub.send(R.ack(R.PUBACK, p.pid, version=V5))
        sub.send(R.disconnect(version=V5))


@pytest.mark.mosquitto_xfail("2.0.11 refuses topics of more than 200 levels")
def test_choice_topic_depth_unlimited(srv):
    """No limit on topic levels beyond the packet size: 1000 levels route normally."""
    deep = "/".join(["l"] * 1000)
    with R.RawClient(srv.port, V311) as sub:
        sub.connect(uid())
        sub.subscribe([(deep + "/#", 0)])
        with R.RawClient(srv.port, V311) as pub:
            pub.connect(uid())
            pub.send(R.publish(deep + "/end", b"deep"))
        p = sub.recv_publish()
        assert p.topic == deep + "/end" and p.payload == b"deep"
