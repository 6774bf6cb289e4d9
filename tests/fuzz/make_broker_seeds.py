"""Writes the seed corpus of fuzz_broker (tests/fuzz/corpus/broker/): scripts of
connections, packets and clock steps in the fuzz target's input format
(tests/fuzz/fuzz_broker.c), built from the integration suite's byte-exact
encoder (tests/integration/rawmqtt.py):

    /usr/bin/python3 tests/fuzz/make_broker_seeds.py
"""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import rawmqtt as R  # noqa: E402

OUT = os.path.join(HERE, "corpus", "broker")


def op_open(v):
    return bytes([0, v])


def op_input(conn, data):
    return bytes([1, conn]) + struct.pack(">H", len(data)) + data


def op_close(conn):
    return bytes([2, conn])


def op_time(ms):
    return bytes([3]) + struct.pack(">H", ms // 10)


def op_split(conn, n):
    return bytes([4, conn, n])


def connect(cid, v, **kw):
    return R.connect(cid, v, proto_name="MQIsdp" if v == 3 else "MQTT", **kw)


def session(v):
    """Two clients: a subscriber at QoS 2 and a publisher at every QoS."""
    s = op_open(v) + op_open(v)
    s += op_input(0, connect("sub", v, clean=False, keepalive=5,
                               props={"session_expiry_interval": 60} if v == 5 else None))
    s += op_input(0, R.subscribe(1, [("t/#", 2), ("$share/g/t/+", 1)], version=v))
    s += op_input(1, connect("pub", v, will={"topic": "t/will", "payload": b"bye", "qos": 1}))
    for q in range(3):
        s += op_input(1, R.publish("t/%d" % q, b"payload", qos=q, pid=q or None, version=v))
    s += op_input(1, R.publish("t/r", b"retained", qos=1, retain=True, pid=5, version=v))
    s += op_input(0, R.ack(R.PUBACK, 1, version=v) + R.ack(R.PUBREC, 2, version=v))
    s += op_input(1, R.ack(R.PUBREL, 2, version=v))
    s += op_input(0, R.ack(R.PUBCOMP, 2, version=v))
    s += op_close(1)
    s += op_time(8000)
    s += op_input(0, R.pingreq() + R.unsubscribe(3, ["t/#"], version=v))
    s += op_input(0, R.disconnect(version=v))
    s += op_open(v)
    s += op_input(2, connect("sub", v, clean=False))
    s += op_time(65000)
    return s


def split_packets(v):
    """Packets cut at odd places and several in one read."""
    pkts = connect("x", v) + R.subscribe(1, [("a", 1)], version=v) + \
        R.publish("a", b"m" * 300, qos=1, pid=7, version=v)
    return op_open(v) + op_split(0, 3) + op_input(0, pkts) + op_time(100)


def takeover(v):
    c = connect("same", v, clean=False)
    return op_open(v) + op_open(v) + op_input(0, c) + op_input(1, c) + op_time(300)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    for v in (3, 4, 5):
        seeds["session-v%d" % v] = session(v)
        seeds["split-v%d" % v] = split_packets(v)
        seeds["takeover-v%d" % v] = takeover(v)
    seeds["no-connect-timeout"] = op_open(4) + op_time(5000)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
