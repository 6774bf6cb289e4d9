"""SUBSCRIBE / SUBACK / UNSUBSCRIBE: wildcard matching, the $-topic rule, the v5
subscription options (No Local, Retain As Published, Retain Handling), subscription
identifiers, shared subscriptions, and UNSUBACK reason codes.

Spec references: MQTT 3.1.1 sections 3.8-3.11 and 4.7; MQTT 5.0 sections 3.8-3.11,
4.7 and 4.8.
"""

import time

import pytest

import rawmqtt as R
from helpers import V5, WAIT, Client, both_versions, uid


def matching(port, v, filters, topics, qos=0):
    """Subscribe `filters`, publish one message per topic; return received topics."""
    sub = Client.connected(port, version=v)
    for f in filters:
        sub.subscribe(f, qos)
    pub = Client.connected(port, version=v)
    for t in topics:
        pub.publish(t, t.encode(), qos=1)
    sub.subscribe("zz-end", 0)
    pub.publish("zz-end", b"end", qos=1)
    got = []
    while True:
        m = sub.get()
        if m.topic == "zz-end":
            break
        got.append(m.topic)
    return got


@both_versions
def test_single_level_wildcard(srv, v):
    r = uid("r")
    topics = [r + "/a/x/c", r + "/a//c", r + "/a/x/y/c", r + "/a/c", r + "/b/x/c"]
    got = matching(srv.port, v, [r + "/a/+/c"], topics)
    assert sorted(got) == sorted([r + "/a/x/c", r + "/a//c"])


@both_versions
def test_multi_level_wildcard(srv, v):
    """'a/#' also matches the parent 'a' [MQTT-4.7.1-2]."""
    r = uid("r")
    topics = [r, r + "/x", r + "/x/y/z", r + "/", r + "x", "other/" + r]
    got = matching(srv.port, v, [r + "/#"], topics)
    assert sorted(got) == sorted([r, r + "/x", r + "/x/y/z", r + "/"])


@both_versions
def test_overlapping_subscriptions_one_copy_each(srv, v):
    """Overlapping subscriptions: 3.1.1 allows one or several copies; 5.0 as well unless
    it is one session. We only require at least one copy and at most one per match."""
    r = uid("r")
    sub = Client.connected(srv.port, version=v)
    sub.subscribe(r + "/#", 1)
    sub.subscribe(r + "/+", 1)
    pub = Client.connected(srv.port, version=v)
    pub.publish(r + "/x", b"1", qos=1)
    got = sub.drain(0.8)
    assert 1 <= len(got) <= 2 and all(m.payload == b"1" for m in got)


def test_dollar_topics_not_matched_by_wildcards(broker):
    """[MQTT-4.7.2-1]: '#' and '+/...' do not match topics starting with '$'."""
    b = broker(["sys_interval 1"])
    wild = Client.connected(b.port)
    wild.subscribe("#", 0)
    wild.subscribe("+/broker/#", 0)
    wild.subscribe("+/+/+", 0)
    sysc = Client.connected(b.port)
    sysc.subscribe("$SYS/#", 0)
    sys_msgs = sysc.get_n(1, timeout=3)
    assert sys_msgs[0].topic.startswith("$SYS/")
    # wait for a $SYS publication made after every subscription: the first messages
    # may be the retained copies sent with the SUBACK, a live one comes unretained
    deadline = time.monotonic() + WAIT
    while sysc.get(timeout=max(0.0, deadline - time.monotonic())).retain:
        pass
    got = [m.topic for m in wild.drain(0.5)]
    assert not [t for t in got if t.startswith("$")], got


@both_versions
def test_suback_granted_qos(srv, v):
    with R.RawClient(srv.port, v) as c:
        c.connect(uid())
        r = uid("r")
        ack = c.subscribe([(r + "/0", 0), (r + "/1", 1), (r + "/2", 2)])
        assert ack.codes == [0, 1, 2]


@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b", "#/a", ""])
@both_versions
def test_invalid_filter_refused(srv, v, bad):
    """An invalid filter gets SUBACK 0x80 (3.1.1) / 0x8F (5.0), or is treated as a
    malformed packet: the connection is closed (5.0: after DISCONNECT 0x81/0x82/0x8F)."""
    with R.RawClient(srv.port, v) as c:
        c.connect(uid())
        c.send(R.subscribe(1, [(bad, 0)], version=v))
        try:
            p = c.recv(3)
        except R.Closed:
            return
        if p.type == R.DISCONNECT:
            assert v == V5 and p.rc in (0x81, 0x82, 0x8F), p
            c.wait_closed()
            return
        assert p.type == R.SUBACK and p.codes[0] >= 0x80, p


def test_v5_no_local(srv):
    t = uid("t")
    me = Client.connected(srv.port, version=V5)
    assert me.subscribe(t, 1, no_local=True) == [1]
    me.publish(t, b"mine", qos=1)
    other = Client.connected(srv.port, version=V5)
    other.publish(t, b"theirs", qos=1)
    got = me.drain(0.8)
    assert [m.payload for m in got] == [b"theirs"]


def test_v311_gets_own_messages(srv):
    """Without No Local (3.1.1), a client receives its own publications."""
    t = uid("t")
    me = Client.connected(srv.port)
    me.subscribe(t, 1)
    me.publish(t, b"mine", qos=1)
    assert me.get().payload == b"mine"


@pytest.mark.parametrize("rap", [False, True])
def test_v5_retain_as_published(srv, rap):
    """5.0 3.3.1.3: RAP=0 -> RETAIN cleared on live forwarding; RAP=1 -> kept."""
    t = uid("t")
    sub = Client.connected(srv.port, version=V5)
    sub.subscribe(t, 1, rap=rap)
    pub = Client.connected(srv.port, version=V5)
    pub.publish(t, b"r", qos=1, retain=True)
    pub.publish(t, b"n", qos=1, retain=False)
    a, b = sub.get_n(2)
    assert (a.payload, a.retain) == (b"r", rap)
    assert (b.payload, b.retain) == (b"n", False)


def test_v311_live_retained_publish_has_retain_clear(srv):
    """[MQTT-3.3.1-9]: forwarded to an existing subscription, RETAIN is 0."""
    t = uid("t")
    sub = Client.connected(srv.port)
    sub.subscribe(t, 1)
    pub = Client.connected(srv.port)
    pub.publish(t, b"r", qos=1, retain=True)
    assert sub.get().retain is False


@pytest.mark.parametrize("rh,first,again", [(0, 1, 1), (1, 1, 0), (2, 0, 0)])
def test_v5_retain_handling(srv, rh, first, again):
    """Retain Handling 0: send on every subscribe; 1: only if the subscription is new;
    2: never [MQTT-3.3.1-9..11]."""
    t = uid("t")
    pub = Client.connected(srv.port, version=V5)
    pub.publish(t, b"kept", qos=1, retain=True)
    sub = Client.connected(srv.port, version=V5)
    sub.subscribe(t, 1, rh=rh)
    got = sub.drain(0.6)
    assert len(got) == first and all(m.retain and m.payload == b"kept" for m in got)
    sub.subscribe(t, 1, rh=rh)
    got = sub.drain(0.6)
    assert len(got) == again and all(m.retain for m in got)


def test_v5_subscription_identifier(srv):
    t = uid("t")
    sub = Client.connected(srv.port, version=V5)
    sub.subscribe(t, 1, props={"SubscriptionIdentifier": 42})
    pub = Client.connected(srv.port, version=V5)
    pub.publish(t, b"x", qos=1)
    m = sub.get()
    assert m.props.get("SubscriptionIdentifier") == [42]


def test_v5_subscription_identifiers_overlapping(srv):
    """5.0 3.3.4: with overlapping subscriptions the identifiers of all matching ones
    are delivered (one message with both, or one message per subscription)."""
    r = uid("r")
    sub = Client.connected(srv.port, version=V5)
    sub.subscribe(r + "/#", 1, props={"SubscriptionIdentifier": 5})
    sub.subscribe(r + "/b", 1, props={"SubscriptionIdentifier": 7})
    sub.subscribe(r + "/+", 1)  # no identifier
    pub = Client.connected(srv.port, version=V5)
    pub.publish(r + "/b", b"x", qos=1)
    got = sub.drain(0.8)
    ids = sorted(i for m in got for i in m.props.get("SubscriptionIdentifier", []))
    assert ids == [5, 7], got


def test_v5_subscription_identifier_not_on_other_subscription(srv):
    r = uid("r")
    sub = Client.connected(srv.port, version=V5)
    sub.subscribe(r + "/a", 1, props={"SubscriptionIdentifier": 9})
    sub.subscribe(r + "/b", 1)
    pub = Client.connected(srv.port, version=V5)
    pub.publish(r + "/b", b"x", qos=1)
    assert "SubscriptionIdentifier" not in sub.get().props


@both_versions
def test_shared_subscription_balancing(srv, v):
    """$share/g/t: each message goes to exactly one member of the group; both members
    get some; an ordinary subscriber still gets every message."""
    t = uid("t")
    members = [Client.connected(srv.port, version=v) for _ in range(2)]
    for m in members:
        assert m.subscribe("$share/g/" + t, 1) == [1]
    plain = Client.connected(srv.port, version=v)
    plain.subscribe(t, 1)
    pub = Client.connected(srv.port, version=v)
    n = 20
    for i in range(n):
        pub.publish(t, b"%d" % i, qos=1)
    assert len(plain.get_n(n)) == n
    got = [[], []]
    deadline = time.monotonic() + WAIT
    while len(got[0]) + len(got[1]) < n and time.monotonic() < deadline:
        for i, m in enumerate(members):
            got[i] += [x.payload for x in m.drain(0.05)]
    for i, m in enumerate(members):   # and no more than one copy each
        got[i] += [x.payload for x in m.drain(0.3)]
    assert all(len(g) > 0 for g in got), got
    allp = got[0] + got[1]
    assert len(allp) == n and sorted(allp) == sorted(b"%d" % i for i in range(n)), got


@pytest.mark.mosquitto_xfail("2.0.11 accepts No Local on a shared subscription (SUBACK 1)")
def test_v5_shared_subscription_no_local_is_protocol_error(srv):
    """5.0 [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error."""
    with R.RawClient(srv.port, V5) as c:
        c.connect(uid())
        c.send(R.subscribe(1, [("$share/g/x", R.sub_opts(1, no_local=True))], version=V5))
        got = c.wait_closed(2)
        for p in got:
            assert p.type == R.DISCONNECT and p.rc == 0x82, p


@both_versions
def test_unsubscribe(srv, v):
    t = uid("t")
    with R.RawClient(srv.port, v) as c:
        c.connect(uid())
        c.subscribe([(t, 1)])
        ack = c.unsubscribe([t, uid("never")])
        if v == V5:
            assert ack.codes == [0x00, 0x11]
        else:
            assert ack.raw[0] == 0xB0 and len(ack.raw) == 4
        with R.RawClient(srv.port, v) as pub:
            pub.connect(uid())
            pub.publish(t, b"x", qos=1)
        c.expect_nothing(0.5)


def test_v5_unsubscribe_nonexistent(srv):
    with R.RawClient(srv.port, V5) as c:
        c.connect(uid())
        assert c.unsubscribe([uid("nothing")]).codes == [0x11]


@both_versions
def test_resubscribe_replaces_qos(srv, v):
    """[MQTT-3.8.4-3]: a second SUBSCRIBE to the same filter replaces it (one copy)."""
    t = uid("t")
    sub = Client.connected(srv.port, version=v)
    sub.subscribe(t, 0)
    sub.subscribe(t, 2)
    pub = Client.connected(srv.port, version=v)
    pub.publish(t, b"x", qos=2)
    got = sub.drain(0.8)
    assert [(m.payload, m.qos) for m in got] == [(b"x", 2)]


@both_versions
def test_pingreq_pingresp(srv, v):
    with R.RawClient(srv.port, v) as c:
        c.connect(uid())
        c.send(R.pingreq())
        assert c.expect(R.PINGRESP).raw == b"\xd0\x00"
