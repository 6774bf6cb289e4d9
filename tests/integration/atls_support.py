"""Helpers for test_attested_tls.py: a throw-away PKI, sim platform keys, policies,
the tmqtt / mosquitto client tools, tshark captures on loopback, and the relay (a
machine in the middle, tests/integration/atls_relay.c) as a process.

Everything is created in the test's temporary directory with `openssl req` /
`openssl x509` and `tmqtt-attest sim-keygen`; nothing is downloaded and only
loopback is used.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

MEAS_BROKER = "11" * 32
MEAS_CLIENT = "22" * 32
MEAS_OTHER = "33" * 32


def run(cmd, timeout=20, env=None, check=False, **kw):
    e = dict(os.environ)
    e.pop("SSLKEYLOGFILE", None)
    e.pop("TMQTT_ATTEST_PROVIDER", None)
    e.pop("TMQTT_ATTEST_PROVIDER_OPTS", None)
    if env:
        e.update(env)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=e, **kw)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, out, err))
    return p.returncode, out, err


class Pki:
    """CA, server certificate (localhost / 127.0.0.1) and a client certificate."""

    def __init__(self, d):
        self.d = str(d)
        j = lambda n: os.path.join(self.d, n)
        self.ca, self.ca_key = j("ca.pem"), j("ca.key")
        self.cert, self.key = j("server.pem"), j("server.key")
        self.ccert, self.ckey = j("client.pem"), j("client.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        run(["openssl", "req", "-x509"] + ec + ["-keyout", self.ca_key, "-out", self.ca,
             "-days", "2", "-subj", "/CN=tmqtt test CA"], check=True)
        self.issue("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        self.issue("client", "sensor-1", "extendedKeyUsage=clientAuth\n")

    def issue(self, name, cn, ext):
        j = lambda n: os.path.join(self.d, n)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        with open(j(name + ".ext"), "w") as f:
            f.write(ext)
        run(["openssl", "req"] + ec + ["-keyout", j(name + ".key"), "-out", j(name + ".csr"),
             "-subj", "/CN=" + cn], check=True)
        run(["openssl", "x509", "-req", "-in", j(name + ".csr"), "-CA", self.ca, "-CAkey",
             self.ca_key, "-CAcreateserial", "-out", j(name + ".pem"), "-days", "2",
             "-extfile", j(name + ".ext")], check=True)
        return j(name + ".pem"), j(name + ".key")


class Tools:
    def __init__(self, build_dir):
        b = os.path.join(build_dir, "bin")
        self.pub = os.path.join(b, "tmqtt-pub")
        self.sub = os.path.join(b, "tmqtt-sub")
        self.attest = os.path.join(b, "tmqtt-attest")
        self.relay = os.path.join(b, "tmqtt-test-atls-relay")

    def sim_keygen(self, path):
        """Creates a sim platform key; returns (path, sha256 of its SPKI, SPKI DER bytes)."""
        _, out, _ = run([self.attest, "sim-keygen", "--key", path], check=True)
        h = [l.split()[1] for l in out.splitlines() if l.startswith("spki_sha256:")][0]
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                             stdout=subprocess.PIPE, check=True).stdout
        return path, h, der


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def policy(path, key_hash, measurement=MEAS_BROKER, extra=""):
    text = "sim_trusted_key %s\n" % key_hash
    if measurement:
        text += "sim_measurement %s\n" % measurement
    return write(path, text + extra)


def sim_listener(pki, key, measurement=MEAS_BROKER, extra=()):
    """Config lines for a TLS listener that answers with sim evidence."""
    # "sent sim attestation evidence" lines are `information`, logged by default (the
    # first `log_type` line would replace the default types, as in Mosquitto)
    return ["certfile " + pki.cert, "keyfile " + pki.key,
            "attestation_provider sim",
            "attestation_opt key=" + key,
            "attestation_opt measurement=" + measurement] + list(extra)


def stop_process(proc, sig):
    """Sends `sig` to a process we started, then waits (SIGKILL after 10 s)."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Capture:
    """tshark on loopback for one TCP port, written to a pcap file.

    To know what the file holds, the capture also takes UDP datagrams to a socket of
    its own: mark() sends one and waits until it is in the file. Packets on loopback
    are captured in order, so whatever was on the wire before the mark is in the file
    too. Test code filters on TCP, so the marks do not show up in its results."""

    def __init__(self, path, port):
        self.path = str(path)
        self.log = self.path + ".log"
        self.logf = open(self.log, "wb")
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.marks = 0
        mark_port = self.udp.getsockname()[1]
        # -a duration: never outlive the test, even if it dies before stop()
        self.proc = subprocess.Popen(["tshark", "-i", "lo", "-f", "tcp port %d or udp port %d"
                                      % (port, mark_port), "-a", "duration:60", "-w",
                                      self.path], stdout=self.logf, stderr=subprocess.STDOUT)
        self.mark()   # the capture is running

    def mark(self, timeout=15.0):
        """Sends a marker datagram until one is in the pcap file."""
        self.marks += 1
        tag = b"tmqtt-capture-mark-%d-%d" % (os.getpid(), self.marks)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("tshark exited: " + open(self.log).read())
            self.udp.sendto(tag, self.udp.getsockname())
            try:
                with open(self.path, "rb") as f:
                    if tag in f.read():
                        return
            except FileNotFoundError:
                pass   # tshark has not created it yet
            if time.monotonic() > deadline:
                raise AssertionError("tshark did not capture a marker within %.0f s: %s"
                                     % (timeout, open(self.log).read()))
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.mark()   # everything sent so far is in the file
            stop_process(self.proc, signal.SIGINT)
        self.logf.close()
        self.udp.close()
        with open(self.path, "rb") as f:
            return f.read()


def wait_for(cond, what, timeout=10.0):
    """Polls cond() until it is true; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Relay:
    """tmqtt-test-atls-relay between a client and the broker on `upstream`: it
    terminates the client's TLS with (cert, key), opens its own TLS to the broker,
    forwards the client's attestation request and relays the broker's evidence."""

    def __init__(self, exe, upstream, cert, key, logpath):
        self.logpath = str(logpath)
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen([exe, "--upstream", str(upstream), "--cert", cert,
                                      "--key", key], stdout=self.logf, stderr=subprocess.STDOUT)

        def port():
            if self.proc.poll() is not None:
                raise AssertionError("relay exited: " + self.log())
            for line in self.log().splitlines():
                if line.startswith("listening "):
                    return int(line.split()[1])
            return None
        self.port = wait_for(port, "the relay to listen")

    def log(self):
        with open(self.logpath, "r", errors="replace") as f:
            return f.read()

    def stop(self):
        stop_process(self.proc, signal.SIGTERM)
        self.logf.close()


def tshark_fields(pcap, display_filter, fields, keylog=None):
    cmd = ["tshark", "-r", str(pcap)]
    if keylog:
        cmd += ["-o", "tls.keylog_file:" + str(keylog)]
    cmd += ["-Y", display_filter, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    _, out, _ = run(cmd, check=True)
    return [l.split("\t") for l in out.splitlines() if l.strip()]


def have_tshark():
    return shutil.which("tshark") is not None and os.geteuid() == 0
