"""Interoperability with Mosquitto's command-line clients (mosquitto_pub/mosquitto_sub
2.0.11) speaking MQTT 3.1.1 and 5.0: the broker must work with clients it was not
written alongside."""

import shutil
import subprocess

import pytest

from helpers import (V5, Client, mosquitto_sub, uid, wait_mosquitto_subscribed,
                     without_mosquitto_trace)

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto_sub") and
                                     shutil.which("mosquitto_pub") and shutil.which("stdbuf")),
                                reason="mosquitto-clients (or coreutils' stdbuf) not installed")

PROTOS = pytest.mark.parametrize("proto", ["mqttv311", "mqttv5"])


def sub_proc(port, proto, topic, count=1, extra=()):
    """mosquitto_sub with its packet trace on (helpers.mosquitto_sub)."""
    return mosquitto_sub(port, ["-V", proto, "-t", topic, "-C", str(count), "-W", "8"] +
                         list(extra))


def pub(port, proto, topic, msg, extra=()):
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", proto, "-t", topic,
           "-m", msg] + list(extra)
    p = subprocess.run(cmd, capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr


def finish(p):
    rc, out, err = p.finish(timeout=12)
    assert rc == 0, (rc, err)
    return without_mosquitto_trace(out)


@PROTOS
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_mosquitto_pub_sub(srv, proto, qos):
    t = uid("t")
    s = sub_proc(srv.port, proto, t, extra=["-q", qos, "-v"])
    wait_mosquitto_subscribed(s)
    pub(srv.port, proto, t, "hello from mosquitto_pub", ["-q", qos])
    assert finish(s).strip() == "%s hello from mosquitto_pub" % t


@PROTOS
def test_mosquitto_retained(srv, proto):
    t = uid("t")
    pub(srv.port, proto, t, "kept", ["-r", "-q", "1"])
    s = sub_proc(srv.port, proto, t, extra=["-F", "%r %t %p"])
    assert finish(s).strip() == "1 %s kept" % t


def test_mosquitto_v5_user_property(srv):
    t = uid("t")
    c = Client.connected(srv.port, version=V5)
    c.subscribe(t, 1)
    pub(srv.port, "mqttv5", t, "with props",
        ["-q", "1", "-D", "publish", "user-property", "origin", "cli",
         "-D", "publish", "content-type", "text/plain"])
    m = c.get()
    assert m.payload == b"with props"
    assert m.props.get("UserProperty") == [("origin", "cli")]
    assert m.props.get("ContentType") == "text/plain"


def test_mosquitto_sub_wildcards_and_count(srv):
    r = uid("r")
    s = sub_proc(srv.port, "mqttv5", r + "/#", count=3, extra=["-v", "-q", "1"])
    wait_mosquitto_subscribed(s)
    for i in range(3):
        pub(srv.port, "mqttv311", "%s/%d" % (r, i), "m%d" % i, ["-q", "1"])
    lines = finish(s).strip().splitlines()
    assert lines == ["%s/%d m%d" % (r, i, i) for i in range(3)]
