"""Synchronous wrapper around paho-mqtt 1.6.1, plus small shared test helpers.

This module owns the "real third-party client" side of the suite. paho's API is
callback-based and threaded; tests want straight-line code: connect and get the CONNACK
reason code, subscribe and get the SUBACK codes, publish and know the flow completed,
collect N messages or fail after a timeout. Every wait here has a timeout, and
automatic reconnection is disabled so a broker that drops a client is observed, not
papered over.

It also owns the suite's ways of waiting for a condition instead of sleeping:
wait_for (poll a predicate under a deadline), wait_logged (an event in the broker's
log) and TracedPopen (a command-line client whose packet trace is read while it runs,
e.g. until its SUBACK).
"""

import os
import queue
import selectors
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

V311, V5 = 4, 5
# Parametrize a test over both protocol versions (ids read well in reports).
both_versions = pytest.mark.parametrize("v", [V311, V5], ids=["v311", "v5"])


def versions(v311_xfail=None, v5_xfail=None):
    """Like both_versions, with a Mosquitto-deviation xfail on one version."""
    def p(v, why, name):
        marks = [pytest.mark.mosquitto_xfail(why)] if why else []
        return pytest.param(v, marks=marks, id=name)
    return pytest.mark.parametrize("v", [p(V311, v311_xfail, "v311"), p(V5, v5_xfail, "v5")])

# The suite's --transport (conftest.py): "tcp", "ws" or "wss" (+ "cafile" for wss).
TRANSPORT = {"kind": "tcp"}

TIMEOUT = 5.0
# Deadline for waiting on a condition the broker must reach on its own: generous, the
# test machines are shared and loaded; every wait returns as soon as it holds.
WAIT = 10.0
ALL_CLIENTS = []  # every paho Client made by a test; conftest stops them at teardown

PROP_NAMES = ("PayloadFormatIndicator", "MessageExpiryInterval", "ContentType",
              "ResponseTopic", "CorrelationData", "SubscriptionIdentifier", "TopicAlias",
              "UserProperty", "SessionExpiryInterval", "AssignedClientIdentifier",
              "ServerKeepAlive", "ReceiveMaximum", "TopicAliasMaximum",
              "MaximumPacketSize", "ReasonString", "MaximumQoS", "RetainAvailable",
              "WildcardSubscriptionAvailable", "SubscriptionIdentifierAvailable",
              "SharedSubscriptionAvailable", "ResponseInformation", "ServerReference",
              "AuthenticationMethod", "WillDelayInterval")


def uid(prefix="c"):
    """A unique client id / topic component (tests never share names by accident)."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def props_dict(p):
    if p is None:
        return {}
    return {n: getattr(p, n) for n in PROP_NAMES if hasattr(p, n)}


def make_props(ptype, **kw):
    """make_props(PacketTypes.PUBLISH, UserProperty=[("a","b")], ContentType="x")."""
    p = Properties(ptype)
    for k, val in kw.items():
        setattr(p, k, val)
    return p


class Message:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)
        self.props = props_dict(getattr(m, "properties", None))

    def __repr__(self):
        return "<Message %s %r qos=%d retain=%d>" % (self.topic, self.payload[:30],
                                                     self.qos, self.retain)


class Client:
    """A paho client driven synchronously. version: 4 (3.1.1) or 5."""

    def __init__(self, port, client_id=None, version=V311, clean=True, host="127.0.0.1"):
        self.port, self.host, self.version, self.clean = port, host, version, clean
        self.client_id = uid() if client_id is None else client_id
        self.c = paho.Client(client_id=self.client_id,
                             protocol=paho.MQTTv5 if version == V5 else paho.MQTTv311,
                             clean_session=None if version == V5 else clean,
                             reconnect_on_failure=False,
                             transport="tcp" if TRANSPORT["kind"] == "tcp" else "websockets")
        if TRANSPORT["kind"] == "wss":
            self.c.tls_set(ca_certs=TRANSPORT["cafile"])
        self.lock = threading.Condition()
        self.connack = None
        self.acks = {}          # mid -> result of SUBACK / UNSUBACK
        self.published = set()  # mids whose QoS flow completed
        self.messages = queue.Queue()
        self.disconnected = None
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self.c.on_disconnect = self._on_disconnect
        self.started = False
        ALL_CLIENTS.append(self)

    @classmethod
    def connected(cls, port, client_id=None, version=V311, clean=True, **kw):
        """Create, connect and assert CONNACK success."""
        c = cls(port, client_id, version, clean)
        rc, _, _ = c.connect(**kw)
        assert rc == 0, "CONNACK rc=%r" % rc
        return c

    # -- callbacks (paho network thread)
    def _on_connect(self, c, ud, flags, rc, props=None):
        with self.lock:
            code = rc.value if isinstance(rc, ReasonCodes) else rc
            self.connack = (code, bool(flags.get("session present")), props_dict(props))
            self.lock.notify_all()

    def _on_subscribe(self, c, ud, mid, granted, props=None):
        with self.lock:
            self.acks[mid] = [g.value if isinstance(g, ReasonCodes) else g for g in granted]
            self.lock.notify_all()

    def _on_unsubscribe(self, c, ud, mid, props=None, codes=None):
        with self.lock:
            if isinstance(codes, list):
                self.acks[mid] = [x.value for x in codes]
            elif isinstance(codes, ReasonCodes):
                self.acks[mid] = [codes.value]
            else:
                self.acks[mid] = []
            self.lock.notify_all()

    def _on_publish(self, c, ud, mid):
        with self.lock:
            self.published.add(mid)
            self.lock.notify_all()

    def _on_message(self, c, ud, m):
        self.messages.put(Message(m))

    def _on_disconnect(self, c, ud, rc, props=None):
        with self.lock:
            self.disconnected = rc.value if isinstance(rc, ReasonCodes) else rc
            self.lock.notify_all()

    def _wait(self, pred, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: timed out after %.1fs" % (what, timeout))
                self.lock.wait(left)

    # -- operations
    def connect(self, keepalive=60, props=None, will=None, username=None,
                password=None, timeout=TIMEOUT):
        """Returns (reason code, session present, CONNACK properties dict)."""
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False), will.get("props"))
        cp = None
        if self.version == V5 and props:
            cp = make_props(PacketTypes.CONNECT, **props)
        if self.version == V5:
            self.c.connect(self.host, self.port, keepalive, clean_start=self.clean,
                           properties=cp)
        else:
            self.c.connect(self.host, self.port, keepalive)
        self.c.loop_start()
        self.started = True
        self._wait(lambda: self.connack is not None or self.disconnected is not None,
                   "CONNACK", timeout)
        if self.connack is None:
            return (None, False, {})
        return self.connack

    def subscribe(self, topic, qos=0, no_local=False, rap=False, rh=0, props=None):
        """Subscribe one filter (or a list of (filter, qos)); returns SUBACK codes."""
        sp = make_props(PacketTypes.SUBSCRIBE, **props) if props else None
        if self.version == V5:
            if isinstance(topic, list):
                arg = [(t, SubscribeOptions(q)) for t, q in topic]
                rc, mid = self.c.subscribe(arg, properties=sp)
            else:
                opts = SubscribeOptions(qos, noLocal=no_local, retainAsPublished=rap,
                                        retainHandling=rh)
                rc, mid = self.c.subscribe(topic, options=opts, properties=sp)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == 0, "subscribe failed locally: %r" % rc
        self._wait(lambda: mid in self.acks, "SUBACK")
        return self.acks.pop(mid)

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == 0
        self._wait(lambda: mid in self.acks, "UNSUBACK")
        return self.acks.pop(mid)

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, wait=True):
        pp = make_props(PacketTypes.PUBLISH, **props) if props else None
        info = self.c.publish(topic, payload, qos, retain, properties=pp)
        assert info.rc == 0, "publish failed locally: %r" % info.rc
        if wait and qos > 0:
            self._wait(lambda: info.mid in self.published, "publish %s QoS %d" % (topic, qos))
        return info.mid

    def get(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no message within %.1fs" % (self.client_id, timeout))

    def get_n(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(0.0, left)))
            except queue.Empty:
                raise AssertionError("%s: got %d of %d messages in %.1fs: %r" % (
                    self.client_id, len(out), n, timeout, out))
        return out

    def drain(self, duration=0.5):
        """All messages arriving within `duration` seconds."""
        deadline = time.monotonic() + duration
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                return out

    def expect_none(self, duration=0.5):
        got = self.drain(duration)
        assert not got, "%s: unexpected messages %r" % (self.client_id, got)

    def wait_disconnected(self, timeout=TIMEOUT):
        self._wait(lambda: self.disconnected is not None, "disconnect", timeout)
        return self.disconnected

    def disconnect(self, rc=None, props=None):
        if self.version == V5 and rc is not None:
            self.c.disconnect(ReasonCodes(PacketTypes.DISCONNECT, identifier=rc),
                              make_props(PacketTypes.DISCONNECT, **props) if props else None)
        else:
            self.c.disconnect()
        self.stop()

    def stop(self):
        if self.started:
            # disconnect() also wakes paho's network thread (its select() would
            # otherwise sleep up to 1 s before loop_stop() can join it).
            try:
                if self.disconnected is None:
                    self.c.disconnect()
            except Exception:
                pass
            self.c.loop_stop()
            self.started = False
        try:
            if self.c._sock:
                self.c._sock.close()
        except OSError:
            pass


def wait_for(pred, timeout=TIMEOUT, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError("%s not met within %.1fs" % (what, timeout))


def wait_logged(b, tmqtt, mosquitto, timeout=WAIT):
    """Waits until broker `b` (conftest.Broker) has logged an event: the text `tmqtt`
    for our broker (native or Wasm), `mosquitto` for Mosquitto's wording (its
    `log_type all`). Fails at the deadline with the end of the log."""
    text = mosquitto if b.kind == "mosquitto" else tmqtt
    deadline = time.monotonic() + timeout
    while text not in b.log():
        if time.monotonic() > deadline:
            raise AssertionError("the broker did not log %r within %.0f s\n%s"
                                 % (text, timeout, b.log_tail()))
        time.sleep(0.02)


class TracedPopen(subprocess.Popen):
    """A child process (a command-line client) whose stdout and stderr are pipes read
    while it runs: read_until() reads one of them until a marker shows, such as the
    SUBACK line of a subscriber's packet trace, or until the child closes it (exits).
    What was read stays in self.early; finish() puts it in front of the rest."""

    def __init__(self, cmd, **kw):
        super().__init__(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        self.early = {"stdout": b"", "stderr": b""}

    def read_until(self, marker, stream="stdout", timeout=WAIT):
        """True once `marker` (bytes) has been read from `stream` ("stdout" or
        "stderr"), False if the pipe closed first (the child exited); fails at the
        deadline."""
        pipe = getattr(self, stream)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(pipe, selectors.EVENT_READ)
            while marker not in self.early[stream]:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError("%s: no %r on its %s within %.0f s: %r" % (
                        self.args[0], marker, stream, timeout, self.early[stream]))
                chunk = os.read(pipe.fileno(), 4096)
                if not chunk:
                    return False
                self.early[stream] += chunk
        return True

    def finish(self, timeout=15):
        """Waits for the exit; returns (exit status, all stdout, all stderr) as bytes."""
        out, err = self.communicate(timeout=timeout)
        return self.returncode, self.early["stdout"] + out, self.early["stderr"] + err


# mosquitto_sub -d prints its packet trace on stdout among the messages: these lines
# are the trace, everything else is output.
MOSQUITTO_TRACE = ("Client ", "Subscribed (mid")


def mosquitto_sub(port, args, **kw):
    """mosquitto_sub -d on 127.0.0.1:port, line-buffered (stdbuf) so that each trace
    line can be read as soon as it is printed."""
    return TracedPopen(["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p",
                        str(port)] + list(args), **kw)


def wait_mosquitto_subscribed(p, timeout=WAIT):
    """Reads mosquitto_sub's trace until its SUBACK: from then on the broker holds the
    subscription. Fails at the deadline or if the subscriber exits first."""
    if not p.read_until(b"received SUBACK", "stdout", timeout):
        raise AssertionError("mosquitto_sub exited before its SUBACK: %r %r"
                             % (p.early["stdout"], p.stderr.read()))


def without_mosquitto_trace(out):
    """mosquitto_sub -d's stdout (bytes) without the trace: the messages, one a line."""
    lines = out.decode().splitlines()
    return "\n".join(l for l in lines if not l.startswith(MOSQUITTO_TRACE))
