"""TLS 1.3 on tmqtt's own record layer (docs/tls-record-layer.md) with third-party
clients: mosquitto_pub / mosquitto_sub for every suite the record layer takes and with
`tls_record_layer openssl`, messages from 0 bytes to 200 KB (several 2^14-byte records,
both directions), and `openssl s_client` asking for KeyUpdates between MQTT packets
(the broker must answer with its own and keep reading and writing under the new keys).

tmqtt only (`tls_record_layer` is tmqtt's key). The record layer itself is tested
against a real OpenSSL client in tests/unit/test_tls_record.c; this checks the whole
broker with clients it did not write.
"""

import os
import select
import shutil
import subprocess
import time

import pytest

import atls_support as A

pytestmark = [pytest.mark.tmqtt_only,
              pytest.mark.skipif(not shutil.which("openssl"), reason="openssl CLI missing"),
              pytest.mark.skipif(not shutil.which("mosquitto_pub"),
                                 reason="mosquitto-clients missing")]

SUITES = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
SIZES = [0, 1, 16383, 16384, 16385, 65536, 200000]


@pytest.fixture
def pki(tmp_path):
    return A.Pki(tmp_path)


def tls_listener(pki, suite, layer):
    lines = ["certfile " + pki.cert, "keyfile " + pki.key, "tls_version tlsv1.3",
             "ciphers_tls1.3 " + suite]
    if layer == "openssl":
        lines.append("tls_record_layer openssl")
    return lines


@pytest.mark.parametrize("layer", ["tmqtt", "openssl"])
@pytest.mark.parametrize("suite", SUITES)
def test_mosquitto_clients_every_size(broker, pki, tmp_path, suite, layer):
    b = broker(tls_listener(pki, suite, layer))
    base = ["-h", "127.0.0.1", "-p", str(b.port), "--cafile", pki.ca, "-q", "1", "-t", "big"]
    session = ["-i", "rl-sub", "-c"]
    # a persistent session subscribes and leaves (-E: once SUBACK came); the messages
    # wait for it at QoS 1, then it comes back for them: no timing involved
    A.run(["mosquitto_sub", "-E"] + session + base, check=True)
    payloads = []
    for i, n in enumerate(SIZES):
        data = bytes((i * 31 + k * 7) & 0xFF for k in range(n))
        payloads.append(data)
        f = tmp_path / ("p%d" % i)
        f.write_bytes(data)
        args = ["-n"] if n == 0 else ["-f", str(f)]
        A.run(["mosquitto_pub"] + base + args, check=True)
    rc, out, err = A.run(["mosquitto_sub", "-F", "%x", "-C", str(len(SIZES)), "-W", "30"]
                         + session + base, timeout=40)
    assert rc == 0, err
    assert out.splitlines() == [p.hex() for p in payloads]


@pytest.mark.parametrize("suite", SUITES)
def test_key_updates_from_openssl_s_client(broker, pki, suite):
    """KeyUpdate(update_requested) from the client between MQTT packets: the broker's
    answer must reach s_client (which otherwise cannot read the next packet), and the
    client's packets after it must reach the broker."""
    b = broker(tls_listener(pki, suite, "tmqtt"))
    # -no_ign_eof keeps s_client's command letters ("K": KeyUpdate, update_requested)
    p = subprocess.Popen(["openssl", "s_client", "-quiet", "-no_ign_eof", "-connect",
                          "127.0.0.1:%d" % b.port, "-CAfile", pki.ca, "-ciphersuites", suite],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def read_until(want, timeout=10):
        buf, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline and want not in buf:
            r, _, _ = select.select([p.stdout], [], [], 0.1)
            if r:
                d = os.read(p.stdout.fileno(), 4096)
                if not d:
                    break
                buf += d
        return buf

    def wait_keyupdate(timeout=10):
        buf, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline and b"KEYUPDATE" not in buf:
            r, _, _ = select.select([p.stderr], [], [], 0.1)
            if r:
                d = os.read(p.stderr.fileno(), 4096)
                if not d:
                    break
                buf += d
        assert b"KEYUPDATE" in buf, buf

    try:
        connect = bytes([0x10, 14, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 2]) + b"ku"
        p.stdin.write(connect)
        p.stdin.flush()
        assert read_until(b"\x20\x02\x00\x00").endswith(b"\x20\x02\x00\x00")   # CONNACK
        for _ in range(3):
            p.stdin.write(b"K\n")
            p.stdin.flush()
            wait_keyupdate()          # sent by s_client: the PINGREQ comes after it
            p.stdin.write(b"\xc0\x00")
            p.stdin.flush()
            assert read_until(b"\xd0\x00") == b"\xd0\x00"              # PINGRESP
        p.stdin.write(b"\xe0\x00")   # DISCONNECT
        p.stdin.close()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_setting_logged_and_checked(broker, broker_kind, pki, build_dir, tmp_path):
    """`tls_record_layer openssl` is said once at start; the default says nothing; any
    other value stops the broker with the key's name."""
    quiet = broker(tls_listener(pki, SUITES[0], "tmqtt"))
    loud = broker(tls_listener(pki, SUITES[0], "openssl"))
    for b in (quiet, loud):
        assert A.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", pki.ca,
                      "-t", "x", "-m", "y"])[0] == 0
    assert "tls_record_layer" not in quiet.log()
    assert loud.log().count("tls_record_layer openssl") == 1
    if broker_kind != "native":
        return   # --test-config is run on the native binary
    conf = tmp_path / "bad.conf"
    conf.write_text("tls_record_layer kernel\n")
    rc, out, err = A.run([os.path.join(build_dir, "bin", "tmqtt-broker"), "-c", str(conf),
                          "--test-config"])
    assert rc != 0
    assert "tls_record_layer" in out + err and "openssl|tmqtt" in out + err
