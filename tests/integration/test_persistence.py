"""Persistence (docs/persistence.md): nothing acknowledged is lost in a crash, a damaged
store never stops the broker, and only the same key can read a store.

- Crash test: persistent publishers (QoS 1 and QoS 2, sequence numbers in the payload)
  and a persistent subscriber run while the broker is killed with SIGKILL at random
  moments and restarted on the same store. Every message the broker acknowledged
  (PUBACK, PUBREC) is delivered, in order per publisher, and none twice at QoS 2
  (the subscriber is a correct QoS 2 receiver: it recognises a redelivered packet id
  before PUBREL).
- Damage test: the store truncated at random offsets and bit-flipped: the broker starts,
  keeps what precedes the damage (exactly what `tmqtt-db` reads from the damaged file),
  says what it discarded, and serves clients.
- Sealing test: a store written under one key cannot be read under another; a frame
  moved, dropped, replayed or spliced from another store is detected (tmqtt-db).
"""

import os
import random
import re
import signal
import struct
import subprocess
import threading
import time

import pytest

import rawmqtt as R
from helpers import V5, V311, uid, wait_for

pytestmark = pytest.mark.tmqtt_only


def persistent_conf(tmp_path, extra=()):
    return ["persistence true", "persistence_location %s" % tmp_path,
            "persistence_seal keyfile %s" % (tmp_path / "store.key")] + list(extra)


def db(build_dir, *args):
    exe = os.path.join(build_dir, "bin", "tmqtt-db")
    if not os.path.exists(exe):
        pytest.fail("missing %s (build the project first)" % exe, pytrace=False)
    p = subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def kill9(b):
    b.proc.kill()
    b.proc.wait()


def restart(b):
    b.stopped = False
    b.start()


# ---- crash test ------------------------------------------------------------------

class Down(Exception):
    """The broker went away; reconnect."""


def connect_retry(port, cid, version, stop, props=None):
    while not stop.is_set():
        try:
            c = R.RawClient(port, version, timeout=2)
            ack = c.connect(cid, clean=False, props=props)
            return c, ack
        except (OSError, AssertionError, R.Closed, R.Timeout):
            time.sleep(0.02)   # the broker is restarting: poll until it listens
    return None, None


class Publisher(threading.Thread):
    """Publishes seq 0, 1, 2 ... at one QoS, one in flight, redelivering across
    reconnects exactly as MQTT requires; records what the broker acknowledged."""

    def __init__(self, port, qos, topic, stop):
        super().__init__(daemon=True)
        self.port, self.qos, self.topic, self.stop = port, qos, topic, stop
        self.cid = uid("pub%d" % qos)
        self.acked = []
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)

    def _run(self):
        seq, pid, state = 0, 1, "new"   # state: new | wait-ack | wait-comp
        c = None
        while not self.stop.is_set():
            if c is None:
                c, _ = connect_retry(self.port, self.cid, V311, self.stop)
                if c is None:
                    return
                if state == "wait-ack":
                    c.send(R.publish(self.topic, b"%d" % seq, qos=self.qos, pid=pid, dup=True))
                elif state == "wait-comp":
                    c.send(R.ack(R.PUBREL, pid))
            try:
                if state == "new":
                    c.send(R.publish(self.topic, b"%d" % seq, qos=self.qos, pid=pid))
                    state = "wait-ack"
                p = c.recv(timeout=2)
                if state == "wait-ack" and p.type in (R.PUBACK, R.PUBREC) and p.pid == pid:
                    self.acked.append(seq)   # the broker owns it now
                    if p.type == R.PUBACK:
                        seq, pid, state = seq + 1, pid % 65535 + 1, "new"
                    else:
                        c.send(R.ack(R.PUBREL, pid))
                        state = "wait-comp"
                elif state == "wait-comp" and p.type == R.PUBCOMP and p.pid == pid:
                    seq, pid, state = seq + 1, pid % 65535 + 1, "new"
            except (OSError, R.Closed, R.Timeout, R.ProtocolError):
                c.close()
                c = None
        if c:
            c.close()


class Subscriber(threading.Thread):
    """A persistent subscriber acknowledging everything; a correct QoS 2 receiver."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.cid = uid("sub")
        self.got = {}              # topic -> [seq in order of first delivery]
        self.awaiting_rel = set()  # QoS 2 packet ids received, PUBREL not yet
        self.error = None
        self.subscribed = threading.Event()

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def _run(self):
        c = None
        while not self.stop.is_set():
            if c is None:
                c, ack = connect_retry(self.port, self.cid, V311, self.stop)
                if c is None:
                    return
                if not self.subscribed.is_set():
                    c.subscribe([("crash/#", 2)])
                    self.subscribed.set()
            try:
                p = c.recv(timeout=0.5)
            except R.Timeout:
                continue
            except (OSError, R.Closed, R.ProtocolError):
                c.close()
                c = None
                continue
            try:
                if p.type == R.PUBLISH:
                    if p.qos == 2 and p.pid in self.awaiting_rel:
                        c.send(R.ack(R.PUBREC, p.pid))    # a redelivery: not a new message
                        continue
                    self.got.setdefault(p.topic, []).append(int(p.payload))
                    if p.qos == 1:
                        c.send(R.ack(R.PUBACK, p.pid))
                    elif p.qos == 2:
                        self.awaiting_rel.add(p.pid)
                        c.send(R.ack(R.PUBREC, p.pid))
                elif p.type == R.PUBREL:
                    self.awaiting_rel.discard(p.pid)
                    c.send(R.ack(R.PUBCOMP, p.pid))
            except OSError:
                c.close()
                c = None
        if c:
            c.close()


def test_crash_loses_nothing_acknowledged(broker, tmp_path):
    """SIGKILL at random moments, restart on the same store, clients carry on: every
    acknowledged message arrives in order per publisher, none twice at QoS 2."""
    rnd = random.Random(int(os.environ.get("TMQTT_CRASH_SEED", "20261201")))
    b = broker(persistent_conf(tmp_path))
    stop, sub_stop = threading.Event(), threading.Event()
    sub = Subscriber(b.port, sub_stop)
    sub.start()
    assert sub.subscribed.wait(10), "subscriber never subscribed"
    pubs = [Publisher(b.port, q, "crash/q%d" % q, stop) for q in (1, 2)]
    for p in pubs:
        p.start()
    kills = int(os.environ.get("TMQTT_CRASH_KILLS", "8"))
    for _ in range(kills):
        before = sum(len(p.acked) for p in pubs)
        wait_for(lambda: sum(len(p.acked) for p in pubs) >= before + rnd.randint(5, 60),
                 timeout=20, what="progress before the next crash")
        kill9(b)
        restart(b)
    # the last stretch without crashes, then everything acknowledged must arrive
    wait_for(lambda: all(len(p.acked) > 20 for p in pubs), timeout=20, what="final progress")
    finish_and_check(pubs, sub, stop, sub_stop)
    assert "persistence:" in b.log()


def finish_and_check(pubs, sub, stop, sub_stop):
    """Stops the publishers, waits until the subscriber has everything they saw
    acknowledged, and checks: nothing missing, in order per publisher, no QoS 2
    message twice."""
    stop.set()
    for p in pubs:
        p.join(10)
    acked = {p.topic: list(p.acked) for p in pubs}
    try:
        wait_for(lambda: all(set(acked[t]) <= set(sub.got.get(t, [])) for t in acked),
                 timeout=30, what="every acknowledged message delivered")
    except AssertionError:
        raise AssertionError("acknowledged but not delivered: %s" % {
            t: sorted(set(acked[t]) - set(sub.got.get(t, [])))[:20] for t in acked})
    sub_stop.set()
    sub.join(10)
    for p in pubs:
        assert p.error is None, p.error
    assert sub.error is None, sub.error
    for topic, seqs in acked.items():
        got = sub.got[topic]
        firsts = []
        for s in got:
            if s not in firsts:
                firsts.append(s)
        missing = sorted(set(seqs) - set(got))
        assert not missing, "%s: acknowledged but never delivered: %s" % (topic, missing[:20])
        assert firsts == sorted(firsts), "%s: out of order: %s" % (topic, firsts)
        if topic.endswith("q2"):
            dups = [s for s in set(got) if got.count(s) > 1]
            assert not dups, "%s: delivered twice at QoS 2: %s" % (topic, sorted(dups)[:20])


# ---- damage test ---------------------------------------------------------------------

def fill_store(b, n=30):
    """Persistent sessions with queued messages and retained messages."""
    for k in range(3):
        with R.RawClient(b.port, V5) as c:
            c.connect("keeper%d" % k, clean=False, props={"session_expiry_interval": 3600})
            c.subscribe([("fill/#", 1)])
            c.disconnect(0)
    with R.RawClient(b.port, V311) as p:
        p.connect(uid())
        for i in range(n):
            p.publish("fill/%d" % i, b"message %d" % i, qos=1, retain=(i % 5 == 0))
        p.disconnect()


def test_damaged_store_never_stops_the_broker(broker, tmp_path, build_dir):
    b = broker(persistent_conf(tmp_path))
    fill_store(b)
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(10)
    store = tmp_path / "tmqtt.db"
    pristine = store.read_bytes()
    key = "keyfile %s" % (tmp_path / "store.key")
    rc, whole, _ = db(build_dir, "dump", "-s", key, str(store))
    assert rc == 0 and "session keeper2" in whole, whole
    rnd = random.Random(7)
    cases = [("truncate", rnd.randrange(65, len(pristine))) for _ in range(4)] + \
            [("flip", rnd.randrange(0, len(pristine))) for _ in range(4)] + [("truncate", 10)]
    for kind, off in cases:
        damaged = bytearray(pristine)
        if kind == "truncate":
            damaged = damaged[:off]
        else:
            damaged[off] ^= 1 << rnd.randrange(8)
        store.write_bytes(bytes(damaged))
        for f in tmp_path.glob("tmqtt.db.*"):
            if "damaged" in f.name or "unreadable" in f.name or f.name.endswith(".new"):
                f.unlink()
        rc, expect, _ = db(build_dir, "dump", "-s", key, str(store))
        expect_state = [l for l in expect.splitlines() if l.startswith(("retained", "session"))]
        restart(b)
        log = b.log()
        assert "persistence:" in log
        if rc == 1:
            assert "discarded" in log, log
        elif rc == 2:
            assert "cannot be read" in log, log
        b.assert_running()
        with R.RawClient(b.port, V311) as c:    # it serves
            c.connect(uid())
        b.proc.send_signal(signal.SIGTERM)
        b.proc.wait(10)
        rc2, after, _ = db(build_dir, "dump", "-s", key, str(store))
        assert rc2 == 0, after   # the broker rewrote a clean store
        got_state = [l for l in after.splitlines() if l.startswith(("retained", "session"))]
        assert got_state == (expect_state if rc != 2 else []), (kind, off)
    b.stopped = True


# ---- compaction --------------------------------------------------------------------------

def test_compaction_keeps_the_live_state(broker, tmp_path, build_dir):
    """A store grown far past its live state is rewritten (in several frames: the
    history is about 40 MiB, the snapshot pieces are cut at 8 MiB) and still holds
    exactly the live state: the last retained message and an offline session's queue."""
    b = broker(persistent_conf(tmp_path))
    fill_store(b, n=10)                           # 3 offline sessions, 10 queued each
    with R.RawClient(b.port, V5) as c:            # and one with about 10 MiB queued
        c.connect("bulk", clean=False, props={"session_expiry_interval": 3600})
        c.subscribe([("bulk/#", 1)])
        c.disconnect(0)
    big = os.urandom(64 * 1024)
    with R.RawClient(b.port, V311) as p:
        p.connect(uid())
        for i in range(150):
            p.publish("bulk/q", b"%06d" % i + big, qos=1)
        for i in range(640):                      # each replaces the one before
            p.publish("compact/r", b"%06d" % i + big, qos=1, retain=True)
        p.disconnect()
    wait_for(lambda: "store compacted from" in b.log(), timeout=30, what="a compaction")
    sizes = [(int(a), int(z)) for a, z in
             re.findall(r"store compacted from (\d+) to (\d+) bytes", b.log())]
    assert sizes and all(a > 32 << 20 and z < 12 << 20 for a, z in sizes), sizes
    store = tmp_path / "tmqtt.db"
    assert store.stat().st_size < 40 << 20
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(10)
    key = "keyfile %s" % (tmp_path / "store.key")
    rc, dump, _ = db(build_dir, "dump", "-s", key, str(store))
    assert rc == 0, dump
    assert dump.count("retained compact/r") == 1, dump
    first = frames(store.read_bytes())[0]
    assert 8 << 20 <= first[1] < 9 << 20, first    # the snapshot's first piece
    restart(b)
    with R.RawClient(b.port, V5) as c:
        c.connect(uid())
        c.subscribe([("compact/r", 1)])
        m = c.recv_publish()
        assert m.payload[:6] == b"000639" and m.payload[6:] == big
    with R.RawClient(b.port, V5) as c:
        ack = c.connect("keeper1", clean=False, props={"session_expiry_interval": 3600})
        assert ack.session_present
        got = [c.recv_publish().payload for _ in range(10)]
        assert got == [b"message %d" % i for i in range(10)], got
    with R.RawClient(b.port, V5) as c:
        ack = c.connect("bulk", clean=False, props={"session_expiry_interval": 3600})
        assert ack.session_present
        got = [c.recv_publish().payload[:6] for _ in range(150)]
        assert got == [b"%06d" % i for i in range(150)]


# ---- sealing test ------------------------------------------------------------------------

def frames(data):
    """(offset, length) of each frame of a store file (format in docs/persistence.md)."""
    out, off = [], 64
    while off + 12 <= len(data):
        n = struct.unpack(">I", data[off:off + 4])[0]
        out.append((off, 12 + n + 16))
        off += 12 + n + 16
    return out


def test_store_sealed_to_its_key(broker, tmp_path, build_dir):
    b = broker(persistent_conf(tmp_path))
    fill_store(b, n=12)
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(10)
    store = tmp_path / "tmqtt.db"
    right = "keyfile %s" % (tmp_path / "store.key")
    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32))
    os.chmod(other_key, 0o600)
    wrong = "keyfile %s" % other_key
    rc, out, _ = db(build_dir, "check", "-s", right, str(store))
    assert rc == 0, out
    rc, out, _ = db(build_dir, "dump", "-s", wrong, str(store))
    assert rc == 1 and "not authentic" in out and "session" not in out, out
    data = store.read_bytes()
    fr = frames(data)
    assert len(fr) >= 4, fr
    header = data[:64]
    body = [data[o:o + n] for o, n in fr]

    def check(name, blob):
        p = tmp_path / ("mangled-" + name)
        p.write_bytes(blob)
        rc, out, _ = db(build_dir, "check", "-s", right, str(p))
        assert rc == 1 and "discarded" in out, (name, out)
        return out
    check("moved", header + body[0] + body[2] + body[1] + b"".join(body[3:]))
    check("dropped", header + body[0] + b"".join(body[2:]))
    check("replayed", header + b"".join(body) + body[-1])
    # spliced: a genuine frame of ANOTHER store under the same key
    b2 = broker(["persistence true", "persistence_location %s" % tmp_path,
                 "persistence_file other.db", "persistence_seal %s" % right])
    fill_store(b2, n=3)
    b2.proc.send_signal(signal.SIGTERM)
    b2.proc.wait(10)
    b2.stopped = True
    other = (tmp_path / "other.db").read_bytes()
    ofr = frames(other)
    check("spliced", header + body[0] + other[ofr[1][0]:ofr[1][0] + ofr[1][1]])
    # the broker itself, under the wrong key: starts, reads nothing, keeps the evidence
    b.rewrite_conf([l for l in b.conf_lines if not l.startswith("persistence_seal")] +
                   ["persistence_seal " + wrong])
    restart(b)
    assert "not authentic" in b.log()
    with R.RawClient(b.port, V5) as c:
        ack = c.connect("keeper0", clean=False, props={"session_expiry_interval": 3600})
        assert ack.raw[2] == 0, "a session came back from a store sealed under another key"
    assert (tmp_path / "tmqtt.db.damaged").exists()
