"""Attested TLS 1.3, protocol v2 (docs/attested-tls.md) end to end over loopback: TLS
listeners (certificates, PSK, client certificates, reload), server attestation with the
sim provider and the tmqtt tools, privacy of the evidence on the wire and no session
tickets on attested connections (tshark), every rejection the tools must report, a
relay (machine in the middle) as a real process, and mutual attestation with an ACL on
claims.

tmqtt only (Mosquitto has no attestation): the native broker and the Wasm broker
(--broker=wasm), whose evidence comes from the runtime's tmqtt_ra import.
"""

import os
import shutil
import signal
import subprocess

import pytest

import atls_support as A
from conftest import free_port
from helpers import (TracedPopen, mosquitto_sub, wait_mosquitto_subscribed,
                     without_mosquitto_trace)

pytestmark = [pytest.mark.tmqtt_only,
              pytest.mark.skipif(not shutil.which("openssl"), reason="openssl CLI missing")]


@pytest.fixture
def env(request, broker_kind, build_dir, tmp_path):
    # (Mosquitto is skipped by tmqtt_only.) The Wasm broker runs every test: its
    # evidence comes from tmqtt-wasm --attest, which conftest.broker_command
    # sets from the listener's attestation_provider / attestation_opt lines.
    t = A.Tools(build_dir)
    for exe in (t.pub, t.sub, t.attest, t.relay):
        if not os.path.exists(exe):
            pytest.fail("missing %s (build the project first)" % exe, pytrace=False)

    class E:
        pass
    e = E()
    e.d = tmp_path
    e.tools = t
    e.pki = A.Pki(tmp_path)
    e.key, e.key_hash, e.key_der = t.sim_keygen(str(tmp_path / "sim-broker.pem"))
    e.ckey, e.ckey_hash, _ = t.sim_keygen(str(tmp_path / "sim-client.pem"))
    e.policy = A.policy(tmp_path / "broker.policy", e.key_hash)
    return e


def tpub(e, port, topic, msg, extra=(), env=None):
    return A.run([e.tools.pub, "-h", "127.0.0.1", "-p", str(port), "--cafile", e.pki.ca,
                  "-t", topic, "-m", msg] + list(extra), env=env)


def tsub_start(e, port, topic, extra=(), env=None, count=1, wait=True):
    """tmqtt-sub with its packet trace (-d, on stderr), returned once the broker has
    answered its SUBSCRIBE (the SUBACK line) or once it has exited: some callers
    expect it to be refused. wait=False: at once (then p.read_until(b"tmqtt <- SUBACK",
    "stderr") is the caller's)."""
    cmd = [e.tools.sub, "-d", "-h", "127.0.0.1", "-p", str(port), "--cafile", e.pki.ca,
           "-t", topic, "-C", str(count), "-W", "8"] + list(extra)
    full = dict(os.environ)
    for k in ("SSLKEYLOGFILE", "TMQTT_ATTEST_PROVIDER", "TMQTT_ATTEST_PROVIDER_OPTS"):
        full.pop(k, None)
    full.update(env or {})
    p = TracedPopen(cmd, env=full)
    if wait:
        p.read_until(b"tmqtt <- SUBACK", "stderr")
    return p


def finish(p):
    rc, out, err = p.finish(timeout=15)
    return rc, out.decode(), err.decode()


# ---- server attestation ------------------------------------------------------------

def test_attested_pubsub_with_claims(env, broker):
    b = broker(A.sim_listener(env.pki, env.key))
    att = ["--attest", "--attest-policy", env.policy]
    s = tsub_start(env, b.port, "t/a", att + ["--attest-show"])
    rc, out, err = tpub(env, b.port, "t/a", "hello", att)
    assert rc == 0, err
    rc, out, err = finish(s)
    assert rc == 0, err
    assert "format: sim" in out
    assert A.MEAS_BROKER in out          # measurement printed
    assert out.rstrip().endswith("hello")
    assert "sent sim attestation evidence" in b.log()


def test_claims_as_json(env, broker):
    b = broker(A.sim_listener(env.pki, env.key))
    s = tsub_start(env, b.port, "t/j", ["--attest", "--attest-policy", env.policy,
                                         "--attest-show", "-F", "json"])
    assert tpub(env, b.port, "t/j", "x", ["--attest", "--attest-policy", env.policy])[0] == 0
    rc, out, err = finish(s)
    assert rc == 0, err
    first = out.splitlines()[0]
    assert first.startswith("{") and '"sim"' in first and A.MEAS_BROKER in first


def test_plain_clients_unaffected(env, broker):
    plain = free_port()
    b = broker(A.sim_listener(env.pki, env.key) + ["listener %d 127.0.0.1" % plain])
    s = mosquitto_sub(plain, ["-t", "p/#", "-C", "2", "-W", "8"])
    wait_mosquitto_subscribed(s)
    # a TLS client without the extension: connects unchanged, receives no evidence
    r = A.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", env.pki.ca,
               "-t", "p/tls", "-m", "one"])
    assert r[0] == 0, r[2]
    r = A.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(plain), "-t", "p/tcp", "-m", "two"])
    assert r[0] == 0, r[2]
    rc, out, err = s.finish(timeout=12)
    assert rc == 0, err
    assert without_mosquitto_trace(out).split() == ["one", "two"]
    assert "attestation evidence" not in b.log()
    # the tmqtt tools without --attest: no request either
    assert tpub(env, b.port, "p/x", "y")[0] == 0
    assert "attestation evidence" not in b.log()


# ---- privacy on the wire -------------------------------------------------------------

@pytest.mark.skipif(not A.have_tshark(), reason="tshark capture needs root")
def test_evidence_never_in_clear(env, broker):
    # OpenSSL keeps the records (tls_record_layer openssl), so that its session
    # tickets show which connection gets none; with tmqtt's own record layer
    # (the default) no connection gets tickets (docs/tls-record-layer.md)
    b = broker(A.sim_listener(env.pki, env.key) + ["tls_record_layer openssl"])
    pcap = env.d / "cap.pcapng"
    keylog = env.d / "keys.log"
    cap = A.Capture(pcap, b.port)
    try:
        rc, out, err = tpub(env, b.port, "w/a", "x", ["--attest", "--attest-policy", env.policy],
                            env={"SSLKEYLOGFILE": str(keylog)})
        # the same client without attestation, to measure what the evidence costs
        rc2 = tpub(env, b.port, "w/a", "x", env={"SSLKEYLOGFILE": str(keylog)})[0]
    finally:
        raw = cap.stop()
    assert rc == 0, err
    assert rc2 == 0
    # the request is visible in the ClientHello (type 65440 = 0xffa0) ...
    ch = A.tshark_fields(pcap, "tls.handshake.type == 1", ["tls.handshake.extension.type"])
    assert any("65440" in r[0].split(",") for r in ch), ch
    # ... but no byte of the evidence is: not the sim magic, not the platform key
    assert b"TMQSIM01" not in raw
    assert env.key_der not in raw
    assert bytes.fromhex(A.MEAS_BROKER) not in raw
    # with the client's key log (SSLKEYLOGFILE still works next to the attestation
    # extension's own key-log callback), the decrypted EncryptedExtensions carry it
    ee = A.tshark_fields(pcap, "tls.handshake.type == 8",
                         ["tcp.stream", "tls.handshake.extension.type",
                          "tls.handshake.extension.data"], keylog=keylog)
    assert ee, "no EncryptedExtensions decrypted"
    ee0 = [r for r in ee if r[0] == "0"]
    assert ee0, ee
    types = ee0[0][1].split(",")
    assert "65440" in types
    # only extensions tshark does not dissect have a .data field: ours
    data = ee0[0][2] if len(ee0[0]) > 2 else ""
    assert b"TMQSIM01".hex() in data
    assert data.startswith("02"), data          # AttestationEvidence version 2
    # no session tickets where evidence was sent; the plain connection gets them
    nst = A.tshark_fields(pcap, "tls.handshake.type == 4", ["tcp.stream"], keylog=keylog)
    per_stream = {}
    for (s_,) in nst:
        per_stream[int(s_)] = per_stream.get(int(s_), 0) + 1
    assert per_stream.get(0, 0) == 0, per_stream
    assert per_stream.get(1, 0) >= 1, per_stream
    # bytes on the wire per connection (stream 0: attested, stream 1: plain)
    rows = A.tshark_fields(pcap, "tcp.len > 0", ["tcp.stream", "tcp.len"])
    per = {}
    for s_, n in rows:
        per[int(s_)] = per.get(int(s_), 0) + int(n)
    print("bytes on the wire: attested %d (no tickets), plain %d (%d tickets), evidence answer "
          "%d bytes" % (per.get(0, 0), per.get(1, 0), per_stream.get(1, 0), len(data) // 2))


# ---- rejections reported by the tools -----------------------------------------------------

def test_rejections(env, broker):
    b = broker(A.sim_listener(env.pki, env.key))
    cases = [
        # default policy: sim is no TEE (or, once policies fail closed: nothing pinned)
        ([], ("not trusted", "pin")),
        # another platform key trusted
        (["--attest-policy", A.policy(env.d / "p1", env.ckey_hash)], "untrusted"),
        # measurement not in policy
        (["--attest-policy", A.policy(env.d / "p2", env.key_hash, A.MEAS_OTHER)], "policy"),
        # unsupported format: the server cannot produce sgx-dcap and stays silent
        (["--attest-policy", env.policy, "--attest-format", "sgx-dcap"],
         "sent no attestation evidence"),
    ]
    for extra, why in cases:
        rc, out, err = tpub(env, b.port, "r/a", "x", ["--attest"] + extra)
        assert rc != 0, (extra, out)
        assert any(w in err for w in (why if isinstance(why, tuple) else (why,))), (extra, err)


def test_debug_refused(env, broker):
    b = broker(A.sim_listener(env.pki, env.key, extra=["attestation_opt debug=true"]))
    rc, out, err = tpub(env, b.port, "r/d", "x", ["--attest", "--attest-policy", env.policy])
    assert rc != 0 and "debug" in err, err
    allow = A.policy(env.d / "dbg", env.key_hash, extra="allow_debug true\n")
    assert tpub(env, b.port, "r/d", "x", ["--attest", "--attest-policy", allow])[0] == 0


def test_relay_refused(env, broker):
    """A machine in the middle (tests/integration/atls_relay.c) terminates the
    client's TLS with a certificate the client trusts, opens its own TLS to the
    broker, forwards the client's nonce and relays the broker's genuine evidence:
    the client refuses, because the evidence covers the relay's handshake."""
    b = broker(A.sim_listener(env.pki, env.key))
    cert, key = env.pki.issue("relay", "relay", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    relay = A.Relay(env.tools.relay, b.port, cert, key, env.d / "relay.log")
    try:
        # control: the relay carries MQTT both ways (QoS 1: the PUBACK comes back)
        rc, out, err = tpub(env, relay.port, "m/r", "through the relay", ["-q", "1"])
        assert rc == 0, err
        # the attack
        rc, out, err = A.run([env.tools.sub, "-h", "127.0.0.1", "-p", str(relay.port),
                              "--cafile", env.pki.ca, "-t", "m/#", "-C", "1", "-W", "8",
                              "--attest", "--attest-policy", env.policy])
        assert rc != 0, out
        assert "attestation refused (binding): genuine evidence" in err, err
        assert "key-schedule binder" in err, err
        A.wait_for(lambda: "evidence relayed" in relay.log(), "the relay's log line")
        log = relay.log()
        assert "connection 1: no attestation request" in log, log
        assert "connection 2: request forwarded" in log, log
        # the evidence the client refused was the broker's own. The broker notes it when
        # its handshake with the relay completes, which may come after the relay's line.
        A.wait_for(lambda: "sent sim attestation evidence" in b.log(), "the broker's note")
        assert b.log().count("sent sim attestation evidence") == 1, b.log()
    finally:
        relay.stop()


def test_missing_answer(env, broker):
    b = broker(["certfile " + env.pki.cert, "keyfile " + env.pki.key])
    rc, out, err = tpub(env, b.port, "r/m", "x", ["--attest", "--attest-policy", env.policy])
    assert rc != 0
    assert "server sent no attestation evidence" in err, err


# ---- TLS listener features ---------------------------------------------------------------

def test_psk_tls13_and_tls12(env, broker):
    psk = A.write(env.d / "psk", "# comment\nid1:00112233445566778899aabbccddeeff\n")
    b = broker(["psk_file " + psk, "psk_hint tmqtt", "use_identity_as_username true"] +
               ["attestation_provider sim", "attestation_opt key=" + env.key,
                "attestation_opt measurement=" + A.MEAS_BROKER])
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "k", "-m", "x",
            "--psk", "00112233445566778899aabbccddeeff", "--psk-identity", "id1"]
    assert A.run(base)[0] == 0
    assert A.run(base + ["--tls-version", "tlsv1.2"])[0] == 0
    bad = list(base)
    bad[bad.index("00112233445566778899aabbccddeeff")] = "0011"
    assert A.run(bad)[0] != 0
    assert "user id1" in b.log()
    # attestation over an external PSK: bound to 32 zero bytes instead of a certificate
    rc, out, err = A.run([env.tools.pub, "-h", "127.0.0.1", "-p", str(b.port), "-t", "k",
                          "-m", "x", "--psk", "00112233445566778899aabbccddeeff",
                          "--psk-identity", "id1", "--attest", "--attest-policy", env.policy])
    assert rc == 0, err


def test_client_certificates_and_identity(env, broker):
    b = broker(["certfile " + env.pki.cert, "keyfile " + env.pki.key, "cafile " + env.pki.ca,
                "require_certificate true", "use_identity_as_username true"])
    ok = A.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", env.pki.ca,
                "--cert", env.pki.ccert, "--key", env.pki.ckey, "-t", "c", "-m", "x"])
    assert ok[0] == 0, ok[2]
    assert "user sensor-1" in b.log()
    no = A.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", env.pki.ca,
                "-t", "c", "-m", "x"])
    assert no[0] != 0


def test_tls_version_minimum(env, broker):
    b = broker(["certfile " + env.pki.cert, "keyfile " + env.pki.key, "tls_version tlsv1.3"])
    base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile", env.pki.ca,
            "-t", "v", "-m", "x"]
    assert A.run(base)[0] == 0
    # (mosquitto's --tls-version is a minimum too, so ask openssl for exactly 1.2)
    s12 = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile", env.pki.ca]
    assert A.run(s12 + ["-tls1_2"], stdin=subprocess.DEVNULL)[0] != 0
    assert A.run(s12 + ["-tls1_3"], stdin=subprocess.DEVNULL)[0] == 0


@pytest.mark.native_only("WASI has no signals: the Wasm broker cannot be told to reload")
def test_sighup_reloads_psk(env, broker):
    psk = A.write(env.d / "psk", "old:0011223344556677\n")
    b = broker(["psk_file " + psk])
    cmd = lambda ident, key: ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-t", "h",
                              "-m", "x", "--psk", key, "--psk-identity", ident]
    assert A.run(cmd("old", "0011223344556677"))[0] == 0
    assert A.run(cmd("new", "8899aabbccddeeff"))[0] != 0
    A.write(env.d / "psk", "new:8899aabbccddeeff\n")
    b.signal(signal.SIGHUP)
    # the reload's last line: the listeners' PSKs are re-read before it
    A.wait_for(lambda: "reloaded password file and ACLs" in b.log(), what="the reload")
    assert A.run(cmd("new", "8899aabbccddeeff"))[0] == 0
    assert A.run(cmd("old", "0011223344556677"))[0] != 0


# ---- mutual attestation ---------------------------------------------------------------

def test_mutual_attestation_and_acl(env, broker):
    cpol = A.policy(env.d / "client.policy", env.ckey_hash, A.MEAS_CLIENT,
                    extra="measurement_set sensors %s\n" % A.MEAS_CLIENT)
    acl = A.write(env.d / "acl", "attested sensors\ntopic readwrite sensors/#\n")
    b = broker(["acl_file " + acl] + A.sim_listener(env.pki, env.key, extra=[
        "cafile " + env.pki.ca, "require_client_attestation true",
        "client_attestation_policy " + cpol]))
    me = ["--cert", env.pki.ccert, "--key", env.pki.ckey, "--attest", "--attest-policy",
          env.policy]
    # the client's own evidence: flags for the subscriber, the environment fallback
    # for the publisher (both are documented)
    flags = me + ["--attest-provider", "sim", "--attest-provider-opt",
                  "key=%s,measurement=%s" % (env.ckey, A.MEAS_CLIENT)]
    good = {"TMQTT_ATTEST_PROVIDER": "sim",
            "TMQTT_ATTEST_PROVIDER_OPTS": "key=%s,measurement=%s" % (env.ckey, A.MEAS_CLIENT)}
    s = tsub_start(env, b.port, "sensors/#", flags)
    rc, out, err = tpub(env, b.port, "other/t", "denied", me, env=good)
    assert rc == 0, err                     # connected; the PUBLISH is dropped by the ACL
    rc, out, err = tpub(env, b.port, "sensors/t", "allowed", flags)
    assert rc == 0, err
    rc, out, err = finish(s)
    assert rc == 0, err
    assert out.split() == ["allowed"]
    log = b.log()
    assert "client attestation accepted (sim, measurement %s)" % A.MEAS_CLIENT in log
    assert "denied by ACL" in log

    # no evidence (no provider): refused before CONNECT
    rc, out, err = tpub(env, b.port, "sensors/t", "x", me)
    assert rc != 0
    # wrongly measured client: refused during the handshake
    wrong = dict(good, TMQTT_ATTEST_PROVIDER_OPTS="key=%s,measurement=%s" % (env.ckey,
                                                                            A.MEAS_OTHER))
    rc, out, err = tpub(env, b.port, "sensors/t", "x", me, env=wrong)
    assert rc != 0
    # a plain TLS client with a certificate but no extension
    rc, out, err = A.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "--cafile",
                          env.pki.ca, "--cert", env.pki.ccert, "--key", env.pki.ckey,
                          "-t", "sensors/t", "-m", "x"])
    assert rc != 0
    # the clients have their answers; the broker's log lines may trail them
    A.wait_for(lambda: "client sent no attestation evidence" in b.log(),
               what="the missing evidence logged")
    A.wait_for(lambda: "client attestation refused (policy)" in b.log(),
               what="the refused measurement logged")


def test_will_checked_with_the_attested_claims(env, broker):
    """Issue 17 #8: a Will is authorised with the claims of the connection that set it.
    The `attested sensors` block denies alarms/#: the Will of a client in that set is
    not published when it vanishes; the Will of an attested client outside the set is
    (control). Before the fix the claims were gone when the Will was checked, so the
    attested block did not apply and the forbidden Will went out."""
    import rawmqtt as R
    cpol = A.policy(env.d / "client.policy", env.ckey_hash, A.MEAS_CLIENT,
                    extra="sim_measurement %s\nmeasurement_set sensors %s\n"
                          % (A.MEAS_OTHER, A.MEAS_CLIENT))
    acl = A.write(env.d / "acl", "topic readwrite #\n\nattested sensors\ntopic deny alarms/#\n")
    plain = free_port()
    b = broker(["acl_file " + acl] + A.sim_listener(env.pki, env.key, extra=[
        "cafile " + env.pki.ca, "require_client_attestation true",
        "client_attestation_policy " + cpol]) + ["listener %d 127.0.0.1" % plain])

    def client(cid, meas, will_topic, payload):
        flags = ["--cert", env.pki.ccert, "--key", env.pki.ckey, "--attest",
                 "--attest-policy", env.policy, "--attest-provider", "sim",
                 "--attest-provider-opt", "key=%s,measurement=%s" % (env.ckey, meas),
                 "-i", cid, "--will-topic", will_topic, "--will-payload", payload,
                 "--will-qos", "1"]
        p = tsub_start(env, b.port, "nothing/here", flags, count=1)
        A.wait_for(lambda: "client '%s' connected" % cid in b.log(),
                   what="%s connected" % cid)
        return p

    with R.RawClient(plain, 4) as watcher:
        watcher.connect("watcher")
        watcher.subscribe([("alarms/#", 1)])
        victim = client("victim", A.MEAS_CLIENT, "alarms/a", "forbidden")
        control = client("control", A.MEAS_OTHER, "alarms/b", "allowed")
        A.stop_process(victim, signal.SIGKILL)
        A.wait_for(lambda: "client 'victim' (" in b.log(), what="victim's end logged")
        A.stop_process(control, signal.SIGKILL)
        p = watcher.recv_publish(timeout=10)
        assert (p.topic, p.payload) == ("alarms/b", b"allowed"), p
    assert "will to 'alarms/a' denied by ACL" in b.log()


@pytest.mark.native_only("the wasm module's policy files live in its preopened directory; "
                         "the refresh itself is the same code")
def test_client_policy_and_collateral_refreshed_without_restart(env, broker, tmp_path):
    """Issue 17 #7: the broker picks up an edited client policy and newer collateral
    without a restart or SIGHUP (attestation_refresh_interval): a client measured
    MEAS_OTHER is refused, the policy file is edited to pin it, and the next handshake
    is accepted; a collateral file written into the policy's collateral_dir (as
    `tmqtt-attest collateral fetch` writes it) is noticed too."""
    cdir = tmp_path / "collateral"
    cdir.mkdir()
    cpol_path = env.d / "client.policy"
    A.policy(cpol_path, env.ckey_hash, A.MEAS_CLIENT, extra="collateral_dir %s\n" % cdir)
    b = broker(["attestation_refresh_interval 1"] + A.sim_listener(env.pki, env.key, extra=[
        "cafile " + env.pki.ca, "require_client_attestation true",
        "client_attestation_policy " + str(cpol_path)]))
    flags = ["--cert", env.pki.ccert, "--key", env.pki.ckey, "--attest", "--attest-policy",
             env.policy, "--attest-provider", "sim", "--attest-provider-opt",
             "key=%s,measurement=%s" % (env.ckey, A.MEAS_OTHER)]
    rc, out, err = tpub(env, b.port, "t", "x", flags)
    assert rc != 0
    A.policy(cpol_path, env.ckey_hash, A.MEAS_OTHER, extra="collateral_dir %s\n" % cdir)
    A.wait_for(lambda: b.log().count("client attestation policy re-read") >= 1,
               what="policy re-read")
    rc, out, err = tpub(env, b.port, "t", "x", flags)
    assert rc == 0, err
    # newer collateral arrives in the cache directory (atomically, as the fetch tool does)
    testdata = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                            "shared", "testdata")
    with open(os.path.join(testdata, "sgx", "collateral.json")) as f:
        text = f.read()
    tmp = cdir / ".incoming"
    tmp.write_text(text)
    os.rename(tmp, cdir / "sgx-00a067110000.json")
    A.wait_for(lambda: b.log().count("client attestation policy re-read") >= 2,
               what="collateral noticed")
    b.assert_running()
# ---- key-attested evidence (+key formats) ---------------------------------------------------

def key_listener(env, extra=()):
    """A listener that can answer sim+key (one quote per attestation key) and sim (one
    quote per handshake), each quote taking 20 ms like a real quoting path."""
    return A.sim_listener(env.pki, env.key, extra=["attestation_formats sim+key,sim",
                                                   "attestation_opt latency_ms=20"] + list(extra))


def test_key_attested_pubsub(env, broker):
    b = broker(key_listener(env))
    att = ["--attest", "--attest-policy", env.policy]
    s = tsub_start(env, b.port, "k/a", att + ["--attest-format", "sim+key", "--attest-show"])
    rc, out, err = tpub(env, b.port, "k/a", "signed", att + ["--attest-format", "sim+key"])
    assert rc == 0, err
    rc, out, err = finish(s)
    assert rc == 0, err
    assert "format: sim+key" in out and "key_attested: true" in out, out
    assert A.MEAS_BROKER in out and "key_not_after: " in out
    assert out.rstrip().endswith("signed")
    assert b.log().count("sent sim+key attestation evidence") == 2, b.log()
    # the client's choice: a quote for its own nonce ...
    s = tsub_start(env, b.port, "k/b", att + ["--attest-format", "sim,sim+key", "--attest-show"])
    assert tpub(env, b.port, "k/b", "x", att)[0] == 0
    rc, out, err = finish(s)
    assert rc == 0, err
    assert "format: sim\n" in out and "key_attested" not in out, out
    # ... and without --attest-format: +key first (tpub above), the direct format when
    # that is all the listener has
    assert "sent sim attestation evidence" in b.log()


def test_key_attested_claims_json(env, broker):
    b = broker(key_listener(env))
    s = tsub_start(env, b.port, "k/j", ["--attest", "--attest-policy", env.policy,
                                         "--attest-format", "sim+key", "--attest-show", "-F",
                                         "json"])
    assert tpub(env, b.port, "k/j", "x", ["--attest", "--attest-policy", env.policy])[0] == 0
    rc, out, err = finish(s)
    assert rc == 0, err
    first = out.splitlines()[0]
    assert '"format":"sim+key"' in first and '"key_attested":true' in first, first


def test_handshake_queue_serves_a_burst(env, broker):
    """Twelve clients at once, each asking for a direct quote of 20 ms: past the
    handshake budget of an iteration (5 ms) the rest wait in the broker's handshake
    queue with their socket events off, and every one is served in turn. (The
    WebAssembly broker's poll() once failed on the parked sockets: ENOSYS.)"""
    b = broker(key_listener(env))
    att = ["--attest", "--attest-policy", env.policy, "--attest-format", "sim"]
    subs = [tsub_start(env, b.port, "burst/t", att, wait=False) for _ in range(12)]
    for s in subs:
        assert s.read_until(b"tmqtt <- SUBACK", "stderr"), s.early
    rc, out, err = tpub(env, b.port, "burst/t", "to all", att)
    assert rc == 0, err
    for s in subs:
        rc, out, err = finish(s)
        assert rc == 0 and out.rstrip().endswith("to all"), (rc, out, err)
    assert b.log().count("sent sim attestation evidence") == 13, b.log_tail()
    b.assert_running()


def test_key_lifetime_against_policy(env, broker):
    strict = A.policy(env.d / "strict.policy", env.key_hash, extra="max_key_lifetime 120\n")
    b = broker(key_listener(env))   # attestation_key_lifetime: 3600 s by default
    rc, out, err = tpub(env, b.port, "k/l", "x", ["--attest", "--attest-policy", strict,
                                                  "--attest-format", "sim+key"])
    assert rc != 0
    assert "attestation refused (key)" in err and "max_key_lifetime (120 s)" in err, err
    short = broker(key_listener(env, ["attestation_key_lifetime 60"]))
    rc, out, err = tpub(env, short.port, "k/l", "x", ["--attest", "--attest-policy", strict,
                                                      "--attest-format", "sim+key"])
    assert rc == 0, err


def test_key_attested_config_errors(env, broker):
    cases = [
        ("attestation_key_lifetime 5", "at least 10 seconds"),
        ("attestation_key_lifetime ten", "attestation_key_lifetime"),
        ("attestation_formats sgx-dcap+key", "produces none of the attestation_formats"),
        ("attestation_formats sim+keys", "unknown evidence format 'sim+keys'"),
    ]
    for line, why in cases:
        b = broker(A.sim_listener(env.pki, env.key, extra=[line]), start=False)
        try:
            p = subprocess.run(b.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=15, cwd=b.workdir)
        except subprocess.TimeoutExpired:
            pytest.fail("broker kept running with %r" % line)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode != 0 and why in out, (line, out)


@pytest.mark.native_only("WASI has no threads: the rotation's quote runs between two "
                         "iterations of the event loop (docs/attested-tls.md)")
def test_key_rotation_holds_direct_handshakes(env, broker):
    """The broker rotates its attestation key every attestation_key_lifetime, making the
    new key's quote in a worker thread. A handshake that needs a direct quote meanwhile
    waits for the provider (it is paused in OpenSSL's client-hello callback and resumed
    by the connection layer): it succeeds, and its evidence is made after the new key."""
    b = broker(A.sim_listener(env.pki, env.key, extra=[
        "attestation_formats sim+key,sim", "attestation_key_lifetime 10",
        "attestation_opt latency_ms=1500"]))
    # the rotation starts when a quarter of the lifetime is left (after ~8 s)
    A.wait_for(lambda: "rotating the sim attestation key" in b.log(), "the rotation to start",
               timeout=20)
    rc, out, err = tpub(env, b.port, "k/r", "x", ["--attest", "--attest-policy", env.policy,
                                                  "--attest-format", "sim"])
    assert rc == 0, err
    log = b.log()
    assert "new sim attestation key" in log, log
    assert log.index("new sim attestation key") < log.index("sent sim attestation evidence"), log
    # and +key clients get the new key
    rc, out, err = tpub(env, b.port, "k/r", "x", ["--attest", "--attest-policy", env.policy,
                                                  "--attest-format", "sim+key"])
    assert rc == 0, err


def test_attest_tool_key_attested(env):
    rd = "ab" * 64
    ev = str(env.d / "ev.key")
    t = env.tools.attest
    A.run([t, "sim-quote", "--key", env.key, "--report-data", rd, "--measurement",
           A.MEAS_BROKER, "--key-attested", "--key-lifetime", "600", "-o", ev], check=True)
    rc, out, err = A.run([t, "show", "--evidence", ev])
    assert rc == 0, err
    assert "format: sim+key" in out and "format: sim\n" in out and "key_not_after:" in out
    rc, out, err = A.run([t, "verify", "--evidence", ev, "--report-data", rd,
                          "--policy", env.policy])
    assert rc == 0 and "verdict: PASS" in out and "key_attested: true" in out, out + err
    rc, out, err = A.run([t, "verify", "--format", "sim+key", "--evidence", ev,
                          "--report-data", "cd" * 64, "--policy", env.policy])
    assert rc == 1 and "verdict: FAIL (binding)" in out, out
    rc, out, err = A.run([t, "verify", "--evidence", ev, "--report-data", rd,
                          "--policy", env.policy, "--at", "2100-01-01T00:00:00Z", "--json"])
    assert rc == 1 and '"error":"key"' in out and "expired" in out, out


def test_reset_after_handshake_logs_its_reason(env, broker):
    """A TLS client that resets its connection (RST) after CONNECT: the broker reports
    the transport's reason when it reaps the connection. The reason string belongs to
    the TLS layer, which is freed when the connection ends: the broker must keep a copy
    (a sanitizer build of the broker fails this test otherwise, through the fixture's
    check of the log)."""
    import socket
    import ssl
    import struct
    b = broker(A.sim_listener(env.pki, env.key))
    ctx = ssl.create_default_context(cafile=env.pki.ca)
    raw = socket.create_connection(("127.0.0.1", b.port))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    # MQTT 3.1.1 CONNECT, client id "rst", clean session, keep-alive 60
    s.sendall(bytes([0x10, 15, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 3]) + b"rst")
    assert s.recv(4)[:1] == b"\x20"                  # CONNACK
    # (wrap_socket took over raw's descriptor)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()                                        # RST, no close_notify
    A.wait_for(lambda: "'rst'" in b.log() and "closed" in b.log(), "the broker to reap it")
    line = [l for l in b.log().splitlines() if "'rst'" in l and "closed" in l][0]
    assert "reset" in line.lower() or "closed by peer" in line, line
