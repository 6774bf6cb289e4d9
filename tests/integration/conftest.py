"""pytest configuration: which broker is under test, and how to run one per test.

This file owns the broker lifecycle for the integration suite. A test asks the `broker`
fixture (a factory) for a running broker with a few mosquitto.conf lines; the factory
writes the config into the test's temporary directory, picks a free loopback port,
starts the broker, waits until the port accepts connections, and at teardown stops it
and FAILS the test if the broker died on its own, died by a signal, or printed a
sanitizer report. Crash detection is the point of the robustness tests, so it lives
here, once, rather than in each test.

The same tests run against three brokers, chosen with --broker:
  native     BUILD/bin/tmqtt-broker -c CONF
  wasm       BUILD/bin/tmqtt-wasm --dir CONFDIR --addr-pool ... BUILD/bin/tmqtt-broker.wasm -- -c CONF
  mosquitto  mosquitto -c CONF        (the reference we validate the suite against)
Only broker_command() knows these command lines.

The transport is a second parameter, --transport:
  tcp   MQTT directly on TCP (the default)
  ws    the default listener is `protocol websockets`; paho clients use
        transport="websockets", the raw client (rawmqtt.py) frames its bytes with
        wsclient.py
  wss   the same over TLS (a test PKI made once per session with the openssl CLI)
Modules whose subject is another transport or a TCP-only tool are skipped for ws and
wss with the reason (TCP_ONLY_MODULES).

Markers:
  @pytest.mark.tmqtt_only            skipped for mosquitto (tmqtt-specific behaviour)
  @pytest.mark.mosquitto_xfail(why)  a known Mosquitto deviation from the spec:
                                     strict xfail for mosquitto, a normal test otherwise
  @pytest.mark.native_only(why)      cannot work in the WebAssembly build for a principled
                                     reason (e.g. WASI has no signals): skipped, with
                                     that reason, for --broker=wasm only
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

KINDS = ("native", "mosquitto", "wasm")
TRANSPORTS = ("tcp", "ws", "wss")
# Modules that test something else than MQTT over the listener's transport.
TCP_ONLY_MODULES = {
    "test_attested_tls": "configures TLS listeners of its own",
    "test_tools": "tmqtt-pub/-sub and mosquitto_pub/_sub speak MQTT over TCP",
    "test_collateral_fetch": "no broker transport involved",
    "test_config_cli": "checks listeners given on the command line (-p)",
    "test_websockets": "declares WebSocket listeners of its own (runs in the tcp run)",
}
# What the transport of the current run needs (set in pytest_configure).
WS = {"transport": "tcp", "pki": None}
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "runtime error:", "Segmentation fault", "Assertion `")


def pytest_addoption(parser):
    parser.addoption("--broker", default="native", choices=KINDS,
                     help="broker under test (default: native tmqtt-broker)")
    parser.addoption("--build-dir", default="build",
                     help="CMake build directory holding bin/tmqtt-broker (default: build)")
    parser.addoption("--transport", default="tcp", choices=TRANSPORTS,
                     help="transport of the default listener and the clients (default: tcp)")


def setup_transport(config):
    """Point the suite's clients at the chosen transport."""
    import helpers
    import rawmqtt
    import wsclient
    t = config.getoption("--transport")
    WS["transport"] = t
    helpers.TRANSPORT["kind"] = t
    if t == "tcp":
        return
    if t == "wss":
        import tempfile
        from atls_support import Pki
        d = tempfile.mkdtemp(prefix="tmqtt-wss-pki-")
        WS["pki_dir"] = d
        WS["pki"] = Pki(d)
        helpers.TRANSPORT["cafile"] = WS["pki"].ca
    rawmqtt.open_connection = wsclient.connector(tls=t == "wss", cafile=helpers.TRANSPORT.get("cafile"))


def pytest_unconfigure(config):
    if WS.get("pki_dir"):
        shutil.rmtree(WS["pki_dir"], ignore_errors=True)


def pytest_configure(config):
    setup_transport(config)
    config.addinivalue_line("markers", "tmqtt_only: test of tmqtt-specific behaviour")
    config.addinivalue_line("markers",
                            "mosquitto_xfail(reason): known Mosquitto deviation from the spec")
    config.addinivalue_line("markers",
                            "native_only(reason): impossible under WASI; skipped for --broker=wasm")


def pytest_collection_modifyitems(config, items):
    kind = config.getoption("--broker")
    transport = config.getoption("--transport")
    for item in items:
        why = TCP_ONLY_MODULES.get(item.module.__name__)
        if transport != "tcp" and why:
            item.add_marker(pytest.mark.skip(reason="not over %s: %s" % (transport, why)))
        m = item.get_closest_marker("native_only")
        if kind == "wasm" and m:
            reason = m.args[0] if m.args else m.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason="not in the Wasm build: " + reason))
        if kind == "mosquitto":
            if item.get_closest_marker("tmqtt_only"):
                item.add_marker(pytest.mark.skip(reason="tmqtt-only behaviour"))
            m = item.get_closest_marker("mosquitto_xfail")
            if m:
                reason = m.args[0] if m.args else m.kwargs.get("reason", "")
                item.add_marker(pytest.mark.xfail(reason="Mosquitto deviation: " + reason,
                                                  strict=True))


def pytest_sessionstart(session):
    """Stop at once, with one clear line, when the broker under test is not built."""
    cfg = session.config
    try:
        broker_command(cfg.getoption("--broker"),
                       os.path.abspath(cfg.getoption("--build-dir")), None)
    except FileNotFoundError as e:
        pytest.exit(str(e), returncode=3)


def pytest_report_header(config):
    return "broker under test: %s (build dir %s), transport %s" % (
        config.getoption("--broker"), config.getoption("--build-dir"),
        config.getoption("--transport"))


@pytest.fixture(scope="session")
def broker_kind(request):
    return request.config.getoption("--broker")


@pytest.fixture(scope="session")
def transport(request):
    """tcp, ws or wss: the transport of the default listener and of helpers' clients."""
    return request.config.getoption("--transport")


@pytest.fixture(scope="session")
def build_dir(request):
    return os.path.abspath(request.config.getoption("--build-dir"))


def broker_command(kind, build_dir, conf_path, extra_args=()):
    """The command line that starts broker `kind` with config file `conf_path`.

    conf_path may be None (e.g. for `-p PORT` tests). Raises FileNotFoundError with a
    clear message when the binary is missing."""
    extra = list(extra_args)
    if kind == "mosquitto":
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            raise FileNotFoundError("broker binary not found: mosquitto (apt-get install mosquitto)")
        return [exe] + (["-c", conf_path] if conf_path else []) + extra
    broker = os.path.join(build_dir, "bin", "tmqtt-broker")
    if kind == "native":
        if not os.path.exists(broker):
            raise FileNotFoundError("broker binary not found: %s (build the project first, "
                                    "or pass --build-dir=DIR)" % broker)
        return [broker] + (["-c", conf_path] if conf_path else []) + extra
    runtime = os.path.join(build_dir, "bin", "tmqtt-wasm")
    module = os.path.join(build_dir, "bin", "tmqtt-broker.wasm")
    for f in (runtime, module):
        if not os.path.exists(f):
            raise FileNotFoundError("broker binary not found: %s (configure with "
                                    "-DTMQTT_WASM=ON, or pass --build-dir=DIR)" % f)
    cmd = [runtime]
    if conf_path:
        # The config directory is preopened at the same path inside the guest, so
        # absolute paths in the config (password_file, acl_file, certfile, policies)
        # work unchanged.
        cmd += ["--dir", os.path.dirname(conf_path)]
        # Inside the module every attestation_provider asks the runtime (tmqtt_ra
        # import); the runtime's provider is chosen on its command line by whoever
        # deploys it. Here the deployer mirrors the config: the first provider other
        # than none and its attestation_opt lines (host paths: the host reads them).
        if os.path.exists(conf_path):
            blocks, cur = [], {"provider": None, "opts": []}
            with open(conf_path) as f:
                for line in f:
                    w = line.split(None, 1)
                    key, val = (w[0], w[1].strip()) if len(w) == 2 else (None, None)
                    if key in ("listener", "connection"):
                        blocks.append(cur)
                        cur = {"provider": None, "opts": []}
                    elif key in ("attestation_provider", "bridge_attestation_provider"):
                        cur["provider"] = val
                    elif key in ("attestation_opt", "bridge_attestation_opt"):
                        cur["opts"].append(val)
            blocks.append(cur)
            # the store's key: held by the runtime, given on its command line
            with open(conf_path) as f:
                for line in f:
                    w = line.split(None, 1)
                    if len(w) == 2 and w[0] == "persistence_seal":
                        cmd += ["--seal", w[1].strip()]
            for blk in blocks:
                if blk["provider"] and blk["provider"] != "none":
                    cmd += ["--attest", blk["provider"]]
                    for o in blk["opts"]:
                        cmd += ["--attest-opt", o]
                    break
    cmd += ["--addr-pool", "127.0.0.1/32,::1/128", module, "--"]
    return cmd + (["-c", conf_path] if conf_path else []) + extra


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _become_nobody():
    """preexec_fn: drop root for a broker started without a configuration file."""
    import pwd
    pw = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)


class Broker:
    """One broker process. Use via the `broker` fixture."""

    def __init__(self, kind, build_dir, workdir, conf_lines, port, name, args=(),
                 with_listener=True):
        self.kind = kind
        self.build_dir = build_dir
        self.workdir = workdir
        self.port = port
        self.host = "127.0.0.1"
        self.name = name
        self.conf_path = os.path.join(workdir, name + ".conf")
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None
        self.stopped = False
        self.preexec = None
        if conf_lines is None:  # no config file at all (e.g. `-p PORT`)
            self.conf_path = None
            self.cmd = broker_command(kind, build_dir, None, args)
            if kind == "native" and os.geteuid() == 0:
                # Without a configuration there is no `user root`: as root the broker
                # would switch to user "tmqtt", which the test machine need not have.
                # Run it as nobody instead, as an operator without root would.
                self.preexec = _become_nobody
            return
        lines = []
        if with_listener:
            if kind == "mosquitto" and WS["transport"] != "tcp":
                # Mosquitto 2.0.11 exits ("Unable to start any listening sockets")
                # when all its listeners are websockets ones: give it an MQTT one too
                lines.append("listener %d 127.0.0.1" % free_port())
            lines.append("listener %d 127.0.0.1" % port)
            lines += self.transport_lines(workdir)
        if not any(line.split()[:1] == ["allow_anonymous"] for line in conf_lines):
            lines.append("allow_anonymous true")
        if not any(line.split()[:1] == ["persistence"] for line in conf_lines):
            lines.append("persistence false")
        lines += list(conf_lines)
        if kind == "mosquitto":
            # Mosquitto drops privileges to user "mosquitto" when started as root, which
            # would stop it reading files in the (root-only) pytest temporary directory.
            lines += ["user root", "log_type all"]
        elif os.geteuid() == 0 and not any(l.split()[:1] == ["user"] for l in conf_lines):
            # tmqtt does the same (default user "tmqtt", and it refuses to stay root
            # without `user root`); test_service.py tests the switch itself.
            lines.append("user root")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.conf_lines = lines
        self.args = args
        self.cmd = broker_command(kind, build_dir, self.conf_path, args)

    def rewrite_conf(self, lines):
        """A new configuration for the next start (the command line follows it: the
        WebAssembly runtime takes the store's seal and the attestation provider there)."""
        self.conf_lines = list(lines)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(self.conf_lines) + "\n")
        self.cmd = broker_command(self.kind, self.build_dir, self.conf_path, self.args)
    @staticmethod
    def transport_lines(workdir):
        """The default listener's lines for the run's --transport (after `listener`)."""
        t = WS["transport"]
        if t == "tcp":
            return []
        lines = ["protocol websockets"]
        if t == "wss":
            # copied next to the config: the Wasm broker sees only that directory
            cert, key = os.path.join(workdir, "wss.pem"), os.path.join(workdir, "wss.key")
            shutil.copyfile(WS["pki"].cert, cert)
            shutil.copyfile(WS["pki"].key, key)
            lines += ["certfile " + cert, "keyfile " + key]
        return lines

    def start(self, wait=True, timeout=10.0):
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     preexec_fn=self.preexec)
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerFailed("broker exited during startup with %s\ncommand: %s\n%s"
                                   % (self.exit_desc(), " ".join(self.cmd), self.log_tail()))
            if port_open(self.port):
                return self
            time.sleep(0.02)
        raise BrokerFailed("broker did not accept connections on port %d within %.0fs\n%s"
                           % (self.port, timeout, self.log_tail()))

    def exit_desc(self):
        rc = self.proc.returncode
        if rc is None:
            return "still running"
        if rc < 0:
            try:
                return "signal %s" % signal.Signals(-rc).name
            except ValueError:
                return "signal %d" % -rc
        return "exit code %d" % rc

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "---- broker log (%s) ----\n%s" % (
            self.log_path, "\n".join(self.log().splitlines()[-n:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self):
        """Fail now if the broker is gone (used by robustness tests after bad input)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail("broker died: %s\n%s" % (self.exit_desc(), self.log_tail()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """Stop the broker; return a problem description or None."""
        if self.proc is None or self.stopped:
            return None
        self.stopped = True
        problem = None
        if self.proc.poll() is not None:
            problem = "broker exited on its own during the test: %s" % self.exit_desc()
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problem = "broker did not exit within 5s of SIGTERM"
            else:
                rc = self.proc.returncode
                if rc < 0 and rc != -signal.SIGTERM:
                    problem = "broker crashed while stopping: %s" % self.exit_desc()
        self.logf.close()
        log = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                problem = (problem + "; " if problem else "") + "log contains %r" % marker
                break
        return problem


class BrokerFailed(Exception):
    pass


@pytest.fixture
def broker(request, broker_kind, build_dir, tmp_path):
    """Factory: broker(conf_lines=[...], args=(), start=True, kind=None) -> running Broker.

    conf_lines=None runs the broker without -c (then pass e.g. args=["-p", port]).

    Every broker started through it is stopped at teardown; the test errors if one
    crashed or exited by itself."""
    started = []

    def make(conf_lines=(), args=(), start=True, port=None, with_listener=True, kind=None):
        # kind: another broker than the run's (e.g. a Mosquitto peer for interop)
        name = "broker%d" % len(started)
        error = None
        try:
            b = Broker(kind or broker_kind, build_dir, str(tmp_path),
                       None if conf_lines is None else list(conf_lines),
                       port or free_port(), name, args, with_listener)
        except FileNotFoundError as e:
            error = str(e)
        if error:
            pytest.fail(error, pytrace=False)
        started.append(b)
        if start:
            try:
                b.start()
            except BrokerFailed as e:
                error = str(e)
            if error:
                pytest.fail(error, pytrace=False)
        return b

    yield make
    problems = []
    for b in started:
        p = b.stop()
        if p:
            problems.append("%s: %s\n%s" % (b.name, p, b.log_tail()))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _stop_paho_clients():
    import helpers
    yield
    while helpers.ALL_CLIENTS:
        helpers.ALL_CLIENTS.pop().stop()


@pytest.fixture
def srv(broker):
    """A broker with the default configuration."""
    return broker()
