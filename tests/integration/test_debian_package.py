"""The Debian package (issue 14): scripts/build-deb builds it with dpkg-buildpackage and
debhelper; it is installed with dpkg, its files, user and systemd unit are checked, the
broker is started as the unit's ExecStart starts it (as root: it drops to the tmqtt
user by itself), mosquitto_pub / mosquitto_sub talk to it, and the package is purged
so the machine is left as it was.

No systemd runs in the test containers, so the unit is checked with
`systemd-analyze verify` and its command line run directly. Needs root (dpkg).
"""

import os
import pwd
import shlex
import signal
import subprocess
import time

import pytest

from conftest import free_port, port_open
from helpers import wait_for

pytestmark = [pytest.mark.tmqtt_only, pytest.mark.native_only("installs the native package")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = "/lib/systemd/system/tmqtt.service"


def dpkg(*args):
    """dpkg, waiting for another dpkg (apt in a parallel job) to release its lock."""
    deadline = time.monotonic() + 300
    while True:
        p = subprocess.run(["dpkg"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode == 0 or "lock" not in out or time.monotonic() > deadline:
            return p.returncode, out
        time.sleep(0.5)   # another dpkg holds the lock: retry until it is free (deadline above)


def installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return b"install ok installed" in p.stdout


def unit_value(text, key):
    return [l.split("=", 1)[1] for l in text.splitlines() if l.startswith(key + "=")]


def test_debian_package_installs_and_serves(broker_kind, tmp_path):
    if broker_kind != "native":
        pytest.skip("the package is the native broker")
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root (the CI runs as root)")
    if installed("tmqtt"):
        pytest.skip("a tmqtt package is already installed here: not replacing it")
    for tool in ("dpkg-buildpackage", "dh", "fakeroot", "mosquitto_pub", "mosquitto_sub"):
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode:
            pytest.fail("%s is missing: scripts/setup installs it" % tool)
    p = subprocess.run([os.path.join(ROOT, "scripts", "build-deb"), "--out", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    deb = out.strip().splitlines()[-1]
    assert deb.endswith("_amd64.deb") or deb.endswith(".deb"), out

    user_existed = True
    try:
        pwd.getpwnam("tmqtt")
    except KeyError:
        user_existed = False
    proc = None
    try:
        rc, out = dpkg("-i", deb)
        assert rc == 0, out
        # files
        for f in ("/usr/sbin/tmqtt-broker", "/usr/bin/tmqtt-pub", "/usr/bin/tmqtt-sub",
                  "/usr/bin/tmqtt-passwd", "/usr/bin/tmqtt-attest"):
            assert os.access(f, os.X_OK), f
        conf = open("/etc/tmqtt/tmqtt.conf").read()
        assert "user tmqtt" in conf and "include_dir /etc/tmqtt/conf.d" in conf
        assert os.path.exists("/usr/share/doc/tmqtt/migrating-from-mosquitto.md.gz") or \
            os.path.exists("/usr/share/doc/tmqtt/migrating-from-mosquitto.md")
        # the user: a system account that cannot log in, owning the state directory
        tm = pwd.getpwnam("tmqtt")
        assert tm.pw_uid < 1000 and tm.pw_shell in ("/usr/sbin/nologin", "/bin/false"), tm
        assert os.stat("/var/lib/tmqtt").st_uid == tm.pw_uid
        # the unit, sandboxed
        unit = open(UNIT).read()
        for opt in ("NoNewPrivileges=true", "ProtectSystem=strict", "ProtectHome=true",
                    "PrivateTmp=true", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                    "SystemCallFilter=@system-service"):
            assert opt in unit.splitlines(), opt
        assert unit_value(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]
        if subprocess.run(["which", "systemd-analyze"], stdout=subprocess.DEVNULL).returncode:
            pytest.fail("systemd-analyze missing (package systemd: scripts/setup installs it)")
        v = subprocess.run(["systemd-analyze", "verify", UNIT], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        assert v.returncode == 0 and not v.stdout.strip(), v.stdout.decode()
        # started as the unit starts it, on a free port instead of 1883
        exec_start = shlex.split(unit_value(unit, "ExecStart")[0])
        assert exec_start == ["/usr/sbin/tmqtt-broker", "-c", "/etc/tmqtt/tmqtt.conf"]
        port = free_port()
        log = open(tmp_path / "service.log", "wb")
        proc = subprocess.Popen(exec_start + ["-p", str(port)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/")
        wait_for(lambda: port_open(port) or proc.poll() is not None, timeout=10,
                 what="service port")
        assert proc.poll() is None, (tmp_path / "service.log").read_text()
        def uids():
            with open("/proc/%d/status" % proc.pid) as f:
                return [l for l in f if l.startswith("Uid:")][0].split()[1:]
        # the port opens before the switch (listeners are bound as root)
        wait_for(lambda: uids() == [str(tm.pw_uid)] * 4, what="the switch to user tmqtt")
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                                "-t", "deb/test", "-C", "1", "-W", "10"],
                               stdout=subprocess.PIPE)
        got = None
        for _ in range(50):   # until the subscription is in place
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port),
                            "-t", "deb/test", "-m", "from the package"], check=True)
            try:
                got, _ = sub.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
        if got is None:
            sub.kill()
            sub.wait()
        assert got is not None and got.decode().strip() == "from the package"
        proc.send_signal(signal.SIGHUP)               # ExecReload
        wait_for(lambda: b"reloaded" in (tmp_path / "service.log").read_bytes(),
                 what="reload")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, (tmp_path / "service.log").read_text()
        proc = None
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        rc, out = dpkg("--purge", "tmqtt")
        if not user_existed:
            subprocess.run(["userdel", "tmqtt"], check=False)
            subprocess.run(["groupdel", "tmqtt"], stderr=subprocess.DEVNULL, check=False)
    assert rc == 0, out
    assert not os.path.exists("/usr/sbin/tmqtt-broker") and not os.path.exists(UNIT)
    assert not os.path.exists("/etc/tmqtt/tmqtt.conf") and not os.path.exists("/var/lib/tmqtt")
