"""Bridges (docs/bridges.md): brokers federated with Mosquitto's bridge configuration.

- Two tmqtt brokers, an edge bridged to a cloud: QoS 0/1/2 in both directions, topic
  prefixes, `in` / `out` / `both`, MQTT 3.1.1 and 5.0, no message looping back, the
  retained notification of the bridge's state, bridged MQTT 5 properties kept.
- Interoperability with Mosquitto's own bridge code: tmqtt bridged to Mosquitto, and
  Mosquitto bridged to tmqtt.
- Attested TLS on the bridge (sim evidence): mutual attestation accepted with the right
  policies; a wrong measurement on either side refused, with a log line that says why,
  and retried later.
- The remote broker killed (SIGKILL) and restarted under QoS 1 and QoS 2 load: every
  message the edge acknowledged reaches the subscriber on the cloud, in order per
  publisher, none twice at QoS 2.

Every broker here is started by the test (kind="mosquitto" for the Mosquitto peers), so
the module is tmqtt-only: the run's broker is the tmqtt under test.
"""

import os
import random
import re
import threading

import pytest

import atls_support as A
import rawmqtt as R
from conftest import free_port
from helpers import V5, V311, Client, uid, wait_for
from test_persistence import Publisher, Subscriber, finish_and_check, kill9, restart

pytestmark = pytest.mark.tmqtt_only

CONNECTED = re.compile(r"bridge (\S+): connected to")


def bridge_lines(name, port, topics, extra=()):
    return (["connection " + name, "address 127.0.0.1:%d" % port] +
            ["topic " + t for t in topics] + ["restart_timeout 1 2"] + list(extra))


def wait_connected(b, n=1, timeout=15):
    wait_for(lambda: len(CONNECTED.findall(b.log())) >= n, timeout=timeout,
             what="the bridge connected (%d)" % n)


def collect(c, n, timeout=10):
    return c.get_n(n, timeout=timeout)


def check_flows(edge_port, cloud_port, v, notify_id):
    """The traffic checks shared by the tmqtt-tmqtt and tmqtt-Mosquitto runs, for an edge
    whose bridge has: sensors/# out 2 "" site1/, cmd/# in 2 edge/ "", both/# both 2."""
    cloud_sub = Client.connected(cloud_port, version=v)
    cloud_sub.subscribe("site1/sensors/#", 2)
    cloud_sub.subscribe("both/#", 2)
    edge_sub = Client.connected(edge_port, version=v)
    edge_sub.subscribe("edge/cmd/#", 2)
    edge_sub.subscribe("both/#", 2)
    edge_pub = Client.connected(edge_port, version=v)
    cloud_pub = Client.connected(cloud_port, version=v)
    # out, with the remote prefix, at every QoS
    for q in (0, 1, 2):
        edge_pub.publish("sensors/t%d" % q, b"out %d" % q, qos=q)
    got = collect(cloud_sub, 3)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        ("site1/sensors/t0", b"out 0", 0), ("site1/sensors/t1", b"out 1", 1),
        ("site1/sensors/t2", b"out 2", 2)], got
    # in, with the local prefix, at every QoS
    for q in (0, 1, 2):
        cloud_pub.publish("cmd/c%d" % q, b"in %d" % q, qos=q)
    got = collect(edge_sub, 3)
    assert sorted((m.topic, m.payload, m.qos) for m in got) == [
        ("edge/cmd/c0", b"in 0", 0), ("edge/cmd/c1", b"in 1", 1), ("edge/cmd/c2", b"in 2", 2)]
    # both: each side's message reaches the other once and never comes back
    edge_pub.publish("both/from-edge", b"e", qos=2)
    assert [(m.topic, m.payload) for m in collect(edge_sub, 1)] == [("both/from-edge", b"e")]
    assert [(m.topic, m.payload) for m in collect(cloud_sub, 1)] == [("both/from-edge", b"e")]
    cloud_pub.publish("both/from-cloud", b"c", qos=1)
    assert [(m.topic, m.payload) for m in collect(cloud_sub, 1)] == [("both/from-cloud", b"c")]
    assert [(m.topic, m.payload) for m in collect(edge_sub, 1)] == [("both/from-cloud", b"c")]
    # a marker behind them on every path: an echo would have arrived before it
    cloud_pub.publish("both/marker", b"m", qos=1)
    edge_pub.publish("both/marker2", b"m2", qos=1)
    rest_edge = collect(edge_sub, 2)
    rest_cloud = collect(cloud_sub, 2)
    assert sorted(m.topic for m in rest_edge) == ["both/marker", "both/marker2"], rest_edge
    assert sorted(m.topic for m in rest_cloud) == ["both/marker", "both/marker2"], rest_cloud
    edge_sub.expect_none(0.3)
    cloud_sub.expect_none(0.3)
    # the notification, retained on the cloud
    watch = Client.connected(cloud_port, version=v)
    watch.subscribe("$SYS/broker/connection/%s/state" % notify_id, 0)
    m = watch.get()
    assert m.payload == b"1" and m.retain


@pytest.mark.parametrize("v", [V311, V5], ids=["v311", "v5"])
def test_two_tmqtt_brokers(broker, v):
    cloud = broker()
    edge = broker(bridge_lines("cloud", cloud.port, [
        'sensors/# out 2 "" site1/', 'cmd/# in 2 edge/ ""', "both/# both 2"],
        ["remote_clientid edge-%d" % v,
         "bridge_protocol_version " + ("mqttv50" if v == V5 else "mqttv311")]))
    wait_connected(edge)
    check_flows(edge.port, cloud.port, v, "edge-%d" % v)
    if v == V5:
        # MQTT 5 properties cross the bridge
        sub = Client.connected(cloud.port, version=V5)
        sub.subscribe("site1/sensors/props", 1)
        pub = Client.connected(edge.port, version=V5)
        pub.publish("sensors/props", b"p", qos=1, props=dict(
            ContentType="text/plain", UserProperty=[("k", "v")], ResponseTopic="reply/here"))
        m = sub.get()
        assert m.props.get("ContentType") == "text/plain", m.props
        assert ("k", "v") in m.props.get("UserProperty", []), m.props
        assert m.props.get("ResponseTopic") == "reply/here", m.props
    # the cloud goes away: the edge notices, says so locally, and comes back
    watch = Client.connected(edge.port, version=v)
    watch.subscribe("$SYS/broker/connection/#", 0)
    assert watch.get().payload == b"1"
    cloud.stop()
    assert watch.get(timeout=10).payload == b"0"
    cloud.stopped = False
    cloud.start()
    wait_connected(edge, 2)
    assert watch.get(timeout=10).payload == b"1"


def test_queued_while_the_remote_is_down(broker, tmp_path):
    """Published on the edge before its bridge could ever connect (the cloud is down):
    queued by the bridge's local session, delivered once the cloud is up."""
    cloud = broker(["persistence true", "persistence_location %s" % tmp_path,
                    "persistence_seal keyfile %s" % (tmp_path / "store.key")])
    sid = uid("s")
    with R.RawClient(cloud.port, V311) as c:     # a persistent subscriber, then offline
        c.connect(sid, clean=False)
        c.subscribe([("edge/q/#", 1)])
        c.disconnect()
    cloud.stop()
    cloud.stopped = False
    edge = broker(bridge_lines("cloud", cloud.port, ['q/# out 1 "" edge/']))
    pub = Client.connected(edge.port)
    for i in range(5):
        pub.publish("q/x", b"%d" % i, qos=1)
    wait_for(lambda: "next attempt in" in edge.log(), timeout=10, what="a failed attempt")
    cloud.start()
    wait_connected(edge, timeout=20)
    with R.RawClient(cloud.port, V311) as c:
        ack = c.connect(sid, clean=False)
        assert ack.session_present
        got = []
        while len(got) < 5:
            got.append(c.recv_publish(timeout=10).payload)
    assert got == [b"%d" % i for i in range(5)]


def test_tmqtt_bridged_to_mosquitto(broker):
    cloud = broker(kind="mosquitto")
    edge = broker(bridge_lines("cloud", cloud.port, [
        'sensors/# out 2 "" site1/', 'cmd/# in 2 edge/ ""', "both/# both 2"],
        ["remote_clientid edge-to-mosq"]))
    wait_connected(edge)
    check_flows(edge.port, cloud.port, V311, "edge-to-mosq")


def test_mosquitto_bridged_to_tmqtt(broker):
    cloud = broker()
    edge = broker(kind="mosquitto", conf_lines=bridge_lines("cloud", cloud.port, [
        'sensors/# out 2 "" site1/', 'cmd/# in 2 edge/ ""', "both/# both 2"],
        ["remote_clientid mosq-edge"]))
    # Mosquitto logs its bridge connecting; tmqtt logs the bridge's CONNECT
    wait_for(lambda: "'mosq-edge' connected" in cloud.log(), timeout=15,
             what="Mosquitto's bridge connected to tmqtt")
    check_flows(edge.port, cloud.port, V311, "mosq-edge")


# ---- attested bridges ---------------------------------------------------------------

@pytest.fixture
def att(build_dir, tmp_path):
    t = A.Tools(build_dir)
    if not os.path.exists(t.attest):
        pytest.fail("missing %s (build the project first)" % t.attest, pytrace=False)

    class E:
        pass
    e = E()
    e.pki = A.Pki(tmp_path)
    e.key, e.key_hash, _ = t.sim_keygen(str(tmp_path / "sim-cloud.pem"))
    e.ekey, e.ekey_hash, _ = t.sim_keygen(str(tmp_path / "sim-edge.pem"))
    e.d = tmp_path
    return e


def attested_pair(broker, e, cloud_policy_meas=A.MEAS_CLIENT, edge_policy_meas=A.MEAS_BROKER,
                  edge_meas=A.MEAS_CLIENT):
    """A cloud that attests itself and requires the edge's evidence; an edge whose
    bridge appraises the cloud and answers with its own."""
    cpol = A.policy(e.d / "edge-evidence.policy", e.ekey_hash, cloud_policy_meas)
    cloud_plain = free_port()   # for the test's own clients on the cloud
    cloud = broker(A.sim_listener(e.pki, e.key, extra=[
        "cafile " + e.pki.ca, "require_client_attestation true",
        "client_attestation_policy " + cpol]) + ["listener %d 127.0.0.1" % cloud_plain])
    cloud.plain = cloud_plain
    bpol = A.policy(e.d / "cloud-evidence.policy", e.key_hash, edge_policy_meas)
    edge = broker(bridge_lines("cloud", cloud.port, ['att/# both 1'], [
        "remote_clientid attested-edge", "bridge_cafile " + e.pki.ca,
        "bridge_certfile " + e.pki.ccert, "bridge_keyfile " + e.pki.ckey,
        "bridge_attestation_policy " + bpol, "bridge_attestation_provider sim",
        "bridge_attestation_opt key=" + e.ekey,
        "bridge_attestation_opt measurement=" + edge_meas]))
    return cloud, edge


def test_mutual_attestation_accepted(broker, att):
    cloud, edge = attested_pair(broker, att)
    wait_connected(edge)
    assert "client attestation accepted (sim, measurement %s)" % A.MEAS_CLIENT in cloud.log()
    sub = Client.connected(edge.port)
    sub.subscribe("att/#", 1)
    pub = Client.connected(cloud.plain)
    pub.publish("att/x", b"through an attested bridge", qos=1)
    assert sub.get().payload == b"through an attested bridge"


def test_attestation_refused_by_the_edge(broker, att):
    """The cloud's measurement is not the one the edge's policy accepts."""
    cloud, edge = attested_pair(broker, att, edge_policy_meas=A.MEAS_OTHER)
    wait_for(lambda: edge.log().count("next attempt in") >= 2, timeout=20,
             what="two refused attempts")
    log = edge.log()
    assert "measurement" in log and "bridge cloud: 127.0.0.1:%d:" % cloud.port in log, log
    assert not CONNECTED.search(log)


def test_attestation_refused_by_the_cloud(broker, att):
    """The edge's measurement is not the one the cloud's client policy accepts."""
    cloud, edge = attested_pair(broker, att, edge_meas=A.MEAS_OTHER)
    wait_for(lambda: edge.log().count("next attempt in") >= 2, timeout=20,
             what="two refused attempts")
    assert not CONNECTED.search(edge.log())
    assert "the remote broker refused our evidence" in edge.log(), edge.log_tail()
    assert "measurement" in cloud.log(), cloud.log_tail()


def test_bridge_insecure_is_explicit_and_logged(broker, tmp_path):
    """A remote certificate for another name: refused by default, accepted with
    bridge_insecure true, which says in the log what it gives up."""
    pki = A.Pki(tmp_path)
    cert, key = pki.issue("other", "other.example", "subjectAltName=DNS:other.example\n")
    cloud = broker(["certfile " + cert, "keyfile " + key])
    tls = ["bridge_cafile " + pki.ca, "remote_clientid insecure-edge"]
    strict = broker(bridge_lines("cloud", cloud.port, ["x/# out 1"], tls))
    wait_for(lambda: strict.log().count("next attempt in") >= 2, timeout=20,
             what="two refused attempts")
    assert not CONNECTED.search(strict.log())
    assert "bridge_insecure" not in strict.log()
    loose = broker(bridge_lines("cloud", cloud.port, ["x/# out 1"],
                                tls + ["bridge_insecure true"]))
    wait_connected(loose)
    assert "bridge cloud: bridge_insecure: the remote broker's name is not checked" in \
        loose.log(), loose.log_tail()


# ---- the remote broker killed under load ----------------------------------------------

def test_remote_killed_under_qos1_and_qos2_load(broker, tmp_path):
    rnd = random.Random(int(os.environ.get("TMQTT_CRASH_SEED", "20261201")))
    # the queues hold what arrives during an outage (the default max_queued_messages,
    # 1000 as in Mosquitto, drops messages here by design: on the edge, for the bridge,
    # while the cloud is down; on the cloud, for the subscriber, while it reconnects)
    cloud = broker(["persistence true", "persistence_location %s" % tmp_path,
                    "persistence_seal keyfile %s" % (tmp_path / "store.key"),
                    "max_queued_messages 0"])
    edge = broker(["max_queued_messages 0"] + bridge_lines(
        "cloud", cloud.port, ["crash/# out 2"], ["remote_clientid crash-edge",
                                                 "restart_timeout 1 1"]))
    wait_connected(edge)
    stop, sub_stop = threading.Event(), threading.Event()
    sub = Subscriber(cloud.port, sub_stop)
    sub.start()
    assert sub.subscribed.wait(10), "subscriber never subscribed"
    pubs = [Publisher(edge.port, q, "crash/q%d" % q, stop) for q in (1, 2)]
    for p in pubs:
        p.start()
    for k in range(3):
        before = sum(len(p.acked) for p in pubs)
        wait_for(lambda: sum(len(p.acked) for p in pubs) >= before + rnd.randint(20, 80),
                 timeout=20, what="progress before the next crash")
        kill9(cloud)
        restart(cloud)
        wait_connected(edge, k + 2, timeout=20)
    wait_for(lambda: all(len(p.acked) > 50 for p in pubs), timeout=20, what="final progress")
    finish_and_check(pubs, sub, stop, sub_stop)
