"""Retained messages and wills: set, replace, clear, delivery on subscribe with the
RETAIN flag, wills on network drop / DISCONNECT with will / normal DISCONNECT, will
retain, and the v5 will delay interval.

Spec references: MQTT 3.1.1 3.1.2.5-3.1.2.7, 3.3.1.3; MQTT 5.0 3.1.2.5, 3.1.3.2,
3.3.1.3, 3.14.2.1.
"""

import time

import pytest

import rawmqtt as R
from helpers import V5, Client, both_versions, uid, wait_logged


@both_versions
def test_retained_set_replace_clear(srv, v):
    t = uid("t")
    pub = Client.connected(srv.port, version=v)
    pub.publish(t, b"one", qos=1, retain=True)
    s1 = Client.connected(srv.port, version=v)
    s1.subscribe(t, 1)
    m = s1.get()
    assert (m.payload, m.retain) == (b"one", True)

    pub.publish(t, b"two", qos=1, retain=True)  # replace
    s2 = Client.connected(srv.port, version=v)
    s2.subscribe(t, 1)
    got = s2.drain(0.6)
    assert [(m.payload, m.retain) for m in got] == [(b"two", True)]

    pub.publish(t, b"", qos=1, retain=True)  # clear [MQTT-3.3.1-10]
    s3 = Client.connected(srv.port, version=v)
    s3.subscribe(t, 1)
    s3.expect_none(0.6)


@both_versions
def test_retained_delivered_to_wildcard_subscribe(srv, v):
    r = uid("r")
    pub = Client.connected(srv.port, version=v)
    for i in range(3):
        pub.publish("%s/%d" % (r, i), b"%d" % i, qos=1, retain=True)
    pub.publish(r + "-other", b"no", qos=1, retain=True)
    sub = Client.connected(srv.port, version=v)
    sub.subscribe(r + "/+", 1)
    got = sub.get_n(3)
    assert sorted(m.payload for m in got) == [b"0", b"1", b"2"]
    assert all(m.retain for m in got)
    sub.expect_none(0.4)


@both_versions
def test_retained_qos_is_min_of_stored_and_granted(srv, v):
    t = uid("t")
    pub = Client.connected(srv.port, version=v)
    pub.publish(t, b"q2", qos=2, retain=True)
    sub = Client.connected(srv.port, version=v)
    sub.subscribe(t, 1)
    assert sub.get().qos == 1


def test_retained_qos0_publish_replaces(srv):
    """[MQTT-3.3.1-7] (3.1.1): a QoS 0 retained message replaces the stored one."""
    t = uid("t")
    pub = Client.connected(srv.port)
    pub.publish(t, b"old", qos=1, retain=True)
    pub.publish(t, b"new", qos=0, retain=True)
    pub.publish(uid("sync"), b"", qos=1)  # QoS 1 round trip: the QoS 0 one was handled
    sub = Client.connected(srv.port)
    sub.subscribe(t, 1)
    assert sub.get().payload == b"new"
    sub.expect_none(0.3)


# ---------------------------------------------------------------- wills

def will(topic, payload=b"gone", qos=1, retain=False, props=None):
    return dict(topic=topic, payload=payload, qos=qos, retain=retain, props=props)


@both_versions
def test_will_on_network_drop(srv, v):
    t = uid("will")
    watcher = Client.connected(srv.port, version=v)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, v)
    c.connect(uid(), will=will(t))
    c.close()  # no DISCONNECT
    m = watcher.get()
    assert (m.topic, m.payload, m.qos) == (t, b"gone", 1)


@both_versions
def test_will_suppressed_by_normal_disconnect(srv, v):
    t = uid("will")
    watcher = Client.connected(srv.port, version=v)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, v)
    c.connect(uid(), will=will(t))
    c.disconnect(0x00 if v == V5 else None)
    watcher.expect_none(1.0)


def test_v5_disconnect_with_will_message(srv):
    """5.0 3.14.2.1: reason 0x04 'Disconnect with Will Message' -> the will is sent."""
    t = uid("will")
    watcher = Client.connected(srv.port, version=V5)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, V5)
    c.connect(uid(), will=will(t, b"asked for"))
    c.disconnect(0x04)
    assert watcher.get().payload == b"asked for"


@both_versions
def test_will_sent_on_keepalive_timeout(srv, v):
    """[MQTT-3.1.2-8]: a keep alive failure publishes the will."""
    t = uid("will")
    watcher = Client.connected(srv.port, version=v)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, v)
    c.connect(uid(), keepalive=1, will=will(t, b"timed out"))
    assert watcher.get(timeout=10).payload == b"timed out"
    c.close()


VIOLATIONS = {
    "second_connect": lambda v: R.connect(uid(), version=v),
    "qos3_publish": lambda v: b"\x36" + R.publish("t", b"x", qos=1, pid=1, version=v)[1:],
    "packet_type_0": lambda v: b"\x00\x00",
}


@pytest.mark.parametrize("violation", [
    pytest.param("second_connect", marks=pytest.mark.mosquitto_xfail(
        "2.0.11 drops the will when the connection fails on a second CONNECT")),
    "qos3_publish", "packet_type_0"])
@both_versions
def test_will_sent_on_protocol_violation(srv, v, violation):
    """3.1.1 3.1.2.5 / 5.0 3.1.2.5: the will is published when the server closes the
    connection because of a protocol error."""
    t = uid("will")
    watcher = Client.connected(srv.port, version=v)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, v)
    c.connect(uid(), will=will(t, b"bad"))
    c.send(VIOLATIONS[violation](v))
    c.wait_closed()
    assert watcher.get(timeout=3).payload == b"bad"


@both_versions
def test_will_retain(srv, v):
    t = uid("will")
    watcher = Client.connected(srv.port, version=v)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, v)
    c.connect(uid(), will=will(t, b"retained will", retain=True))
    c.close()
    # the will is published (and so retained) before it reaches the watcher
    assert watcher.get().payload == b"retained will"
    late = Client.connected(srv.port, version=v)
    late.subscribe(t, 1)
    m = late.get()
    assert (m.payload, m.retain) == (b"retained will", True)


def test_v5_will_properties_passed_through(srv):
    t = uid("will")
    watcher = Client.connected(srv.port, version=V5)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, V5)
    c.connect(uid(), will=will(t, props={"content_type": "text/plain",
                                         "user_property": [("k", "v")],
                                         "payload_format_indicator": 1}))
    c.close()
    m = watcher.get()
    assert m.props.get("ContentType") == "text/plain"
    assert m.props.get("UserProperty") == [("k", "v")]
    assert m.props.get("PayloadFormatIndicator") == 1


def test_v5_will_delay_reconnect_suppresses(srv):
    """5.0 3.1.3.2.2: reconnecting to the session within the will delay: no will."""
    t, cid = uid("will"), uid()
    watcher = Client.connected(srv.port, version=V5)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, V5)
    c.connect(cid, clean=False, props={"session_expiry_interval": 30},
              will=will(t, props={"will_delay_interval": 2}))
    c.close()
    # the broker has seen the connection go (the will delay runs): reconnect now
    wait_logged(srv, "client '%s' (" % cid, "Client %s closed its connection." % cid)
    with R.RawClient(srv.port, V5) as c2:
        assert c2.connect(cid, clean=False,
                          props={"session_expiry_interval": 30}).session_present
        watcher.expect_none(2.5)
        c2.disconnect(0)


def test_v5_will_delay_elapses(srv):
    """The will is published once the will delay passes, not before."""
    t = uid("will")
    watcher = Client.connected(srv.port, version=V5)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, V5)
    c.connect(uid(), clean=False, props={"session_expiry_interval": 30},
              will=will(t, b"late", props={"will_delay_interval": 2}))
    t0 = time.monotonic()
    c.close()
    m = watcher.get(timeout=5)
    elapsed = time.monotonic() - t0
    assert m.payload == b"late"
    assert elapsed >= 1.5, "will sent after %.2fs, before its 2s delay" % elapsed


def test_v5_will_delay_capped_by_session_expiry(srv):
    """The will is sent when the session ends, if that is before the will delay."""
    t = uid("will")
    watcher = Client.connected(srv.port, version=V5)
    watcher.subscribe(t, 1)
    c = R.RawClient(srv.port, V5)
    c.connect(uid(), clean=False, props={"session_expiry_interval": 1},
              will=will(t, b"session over", props={"will_delay_interval": 60}))
    c.close()
    assert watcher.get(timeout=5).payload == b"session over"
