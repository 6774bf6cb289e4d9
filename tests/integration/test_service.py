"""The broker as a service (issue 14): `user` (dropping root), `pid_file`, `include_dir`,
logging (`log_dest` file/syslog/topic, `log_type`, timestamps, `log_facility`) and the
SIGHUP that reopens the log file.

The privilege tests need root (the CI runs as root): they create a system user of
their own, start the broker as root and read the process's credentials from
/proc/PID/status, then remove the user. tmqtt-only: Mosquitto's user handling and log
formats differ.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

import rawmqtt as R
from conftest import broker_command
from helpers import V311, V5, Client, uid, wait_for

pytestmark = [pytest.mark.tmqtt_only,
              pytest.mark.native_only("WASI has no users, signals, syslog or pid files")]

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="privilege tests need root (the CI runs as root)")


def creds(pid):
    """(uids, gids, groups) from /proc/PID/status."""
    uids = gids = groups = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Uid":
                uids = [int(x) for x in v.split()]
            elif k == "Gid":
                gids = [int(x) for x in v.split()]
            elif k == "Groups":
                groups = [int(x) for x in v.split()]
    return uids, gids, groups


@pytest.fixture
def system_user():
    """A system user that exists for the test only."""
    name = "tmqtt-t%s" % uuid.uuid4().hex[:6]
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


def run_to_exit(cmd, cwd, timeout=10):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def roundtrip(port, topic=None):
    topic = topic or uid("t")
    c = Client.connected(port)
    c.subscribe(topic, 1)
    c.publish(topic, b"still serving", qos=1)
    assert c.get().payload == b"still serving"
    c.disconnect()


@needs_root
def test_drops_root_to_the_configured_user(broker, system_user):
    b = broker(["user %s" % system_user.pw_name])
    # the port opens before the switch (listeners are bound as root): wait for it
    wait_for(lambda: "running as user" in b.log(), what="the switch to the user")
    uids, gids, groups = creds(b.proc.pid)
    assert uids == [system_user.pw_uid] * 4, uids      # real, effective, saved, fs
    assert gids == [system_user.pw_gid] * 4, gids
    assert groups == [system_user.pw_gid], groups        # initgroups: root's groups are gone
    assert "running as user %s" % system_user.pw_name in b.log()
    roundtrip(b.port)


@needs_root
def test_reload_after_the_drop_keeps_serving(broker, system_user, build_dir):
    """SIGHUP re-reads the password file as the new user (who can read it here)."""
    d = tempfile.mkdtemp(prefix="tmqtt-pw-")     # pytest's tmp_path is root-only
    try:
        os.chmod(d, 0o755)
        pw = os.path.join(d, "pw")
        passwd = os.path.join(build_dir, "bin", "tmqtt-passwd")
        subprocess.run([passwd, "-c", "-b", "-I", "1000", pw, "u", "p"], check=True)
        os.chmod(pw, 0o644)
        b = broker(["user %s" % system_user.pw_name, "password_file %s" % pw])
        subprocess.run([passwd, "-b", "-I", "1000", pw, "v", "q"], check=True)
        b.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded password file" in b.log(), what="reload")
        assert "reload failed" not in b.log(), b.log_tail()
        c = Client(b.port)
        assert c.connect(username="v", password="q")[0] == 0   # the user added before HUP
    finally:
        shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_root_without_the_tmqtt_user_refuses_to_run(broker, build_dir, tmp_path):
    b = broker(["persistence false"], start=False)
    # the fixture adds `user root` for the other tests: remove it here
    with open(b.conf_path) as f:
        lines = [l for l in f if l.strip() != "user root"]
    with open(b.conf_path, "w") as f:
        f.writelines(lines)
    try:
        tm = pwd.getpwnam("tmqtt")
    except KeyError:
        tm = None
    if tm is None:
        rc, out = run_to_exit(b.cmd, str(tmp_path))
        assert rc != 0, out
        assert "the user 'tmqtt' to run as does not exist" in out and "user root" in out, out
    else:   # a tmqtt user exists on this machine (e.g. the package is installed)
        b.start()
        wait_for(lambda: creds(b.proc.pid)[0] == [tm.pw_uid] * 4, what="switch to tmqtt")


@needs_root
def test_unknown_user_is_an_error(broker, tmp_path):
    b = broker(["user no-such-user-%s" % uuid.uuid4().hex[:6]], start=False)
    rc, out = run_to_exit(b.cmd, str(tmp_path))
    assert rc != 0 and "no such user" in out, out


@needs_root
def test_user_root_stays_root_with_a_warning(broker):
    b = broker(["user root"])
    assert creds(b.proc.pid)[0] == [0, 0, 0, 0]
    assert "running as root because the configuration says `user root`" in b.log()


def test_pid_file_written_and_removed(broker, tmp_path):
    pid = tmp_path / "tmqtt.pid"
    b = broker(["pid_file %s" % pid])
    assert pid.read_text().strip() == str(b.proc.pid)
    assert b.stop() is None
    assert not pid.exists()


def test_pid_file_unwritable_stops_startup(broker, tmp_path):
    b = broker(["pid_file %s/no/such/dir/tmqtt.pid" % tmp_path], start=False)
    rc, out = run_to_exit(b.cmd, str(tmp_path))
    assert rc != 0 and "pid_file" in out and "cannot write" in out, out


def test_include_dir_in_mosquittos_order(broker, tmp_path):
    """Mosquitto's order: case-insensitive, upper case first (a.conf before B.conf,
    A.conf before a.conf): the last file read sets auto_id_prefix."""
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "B.conf").write_text("auto_id_prefix upperB-\n")
    (d / "a.conf").write_text("auto_id_prefix lowera-\n")
    (d / "A.conf").write_text("auto_id_prefix upperA-\n")
    (d / "README").write_text("this is not a configuration file\n")
    b = broker(["include_dir %s" % d])
    with R.RawClient(b.port, V5) as c:
        ack = c.connect("")
        assert ack.props["assigned_client_identifier"].startswith("upperB-"), ack.props


def test_include_dir_errors_name_the_included_file(broker, tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "10-bad.conf").write_text("# ok\nno_such_key 1\n")
    b = broker(["include_dir %s" % d], start=False)
    rc, out = run_to_exit(b.cmd, str(tmp_path))
    assert rc != 0 and "%s:2: unknown configuration key 'no_such_key'" % (d / "10-bad.conf") in out


def test_include_dir_only_from_the_main_file(broker, tmp_path):
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "x.conf").write_text("include_dir %s\n" % tmp_path)
    b = broker(["include_dir %s" % d], start=False)
    rc, out = run_to_exit(b.cmd, str(tmp_path))
    assert rc != 0 and "only valid in the main configuration file" in out, out


# ---- logging ---------------------------------------------------------------------------

def test_log_dest_file_reopened_on_sighup(broker, tmp_path):
    log = tmp_path / "broker.log"
    b = broker(["log_dest file %s" % log, "log_type all"])
    wait_for(lambda: log.exists() and "tmqtt broker running" in log.read_text(), what="log")
    assert "tmqtt broker running" not in b.log()     # stderr is no longer a destination
    rotated = tmp_path / "broker.log.1"
    os.rename(log, rotated)                           # what logrotate does
    b.signal(signal.SIGHUP)
    wait_for(lambda: log.exists() and "reloaded" in log.read_text(), what="reopened log")
    assert "reloaded" not in rotated.read_text()


def test_log_dest_stdout_and_stderr_both(broker):
    b = broker(["log_dest stdout", "log_dest stderr"])
    # conftest sends both streams to one file: each line appears twice
    wait_for(lambda: b.log().count("tmqtt broker running") == 2, what="two destinations")


def test_default_log_types_and_subscribe(broker):
    b = broker([])
    with R.RawClient(b.port, V311) as c:
        c.connect(uid())
        c.subscribe("quiet/topic")
    assert "quiet/topic" not in b.log()              # subscribe is not a default type
    b2 = broker(["log_type subscribe", "log_type unsubscribe", "log_type notice"])
    with R.RawClient(b2.port, V311) as c:
        c.connect("logged-client")
        c.subscribe("loud/topic")
        c.unsubscribe(["loud/topic"])
    wait_for(lambda: "unsubscribed from 'loud/topic'" in b2.log(), what="unsubscribe line")
    assert "subscribe: client 'logged-client' subscribed to 'loud/topic' (QoS 0)" in b2.log()


def test_log_timestamps(broker):
    b = broker(["log_timestamp false"])
    wait_for(lambda: "tmqtt broker running" in b.log(), what="log")
    line = [l for l in b.log().splitlines() if "tmqtt broker running" in l][0]
    assert line.startswith("notice: "), line
    b2 = broker(["log_timestamp_format [%Y-%m-%d %H:%M:%S]"])
    wait_for(lambda: "tmqtt broker running" in b2.log(), what="log")
    line = [l for l in b2.log().splitlines() if "tmqtt broker running" in l][0]
    assert re.match(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]: notice: ", line), line
    b3 = broker([])
    wait_for(lambda: "tmqtt broker running" in b3.log(), what="log")
    line = [l for l in b3.log().splitlines() if "tmqtt broker running" in l][0]
    assert re.match(r"^\d{10,}: notice: ", line), line   # Mosquitto's default: epoch seconds


@needs_root
def test_log_dest_syslog_with_facility(broker):
    """A datagram socket at /dev/log stands in for syslogd (only when there is none)."""
    if os.path.exists("/dev/log"):
        pytest.skip("/dev/log exists (a syslog daemon runs here): not replacing it")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("/dev/log")
        s.settimeout(5)
        b = broker(["log_dest syslog", "log_facility 5", "log_type all"])
        got = []
        while not any(b"tmqtt broker running" in g for g in got):
            got.append(s.recv(4096))
        line = [g for g in got if b"tmqtt broker running" in g][0].decode()
        # <PRI> = local5 (21) * 8 + notice (5) = 173; "tmqtt[PID]: message"
        assert line.startswith("<173>"), line
        assert "tmqtt[%d]: tmqtt broker running" % b.proc.pid in line, line
        assert "tmqtt broker running" not in b.log()   # syslog only
    finally:
        s.close()
        os.unlink("/dev/log")


def test_log_dest_topic(broker):
    b = broker(["log_dest topic", "log_dest stderr", "log_type all"])
    c = Client.connected(b.port, version=V311)
    assert c.subscribe("$SYS/broker/log/#", 2) == [2]
    cid = uid("logged")
    with R.RawClient(b.port, V311) as other:
        other.connect(cid)
        other.subscribe("x/y")
    msgs = []
    wait = lambda: any(m.topic == "$SYS/broker/log/M/subscribe" and b"'x/y'" in m.payload
                       for m in msgs) and \
        any(m.topic == "$SYS/broker/log/N" and cid.encode() in m.payload for m in msgs)
    deadline = time.monotonic() + 5
    while not wait() and time.monotonic() < deadline:
        msgs += c.drain(0.2)
    assert wait(), msgs
    sub = [m for m in msgs if m.topic == "$SYS/broker/log/M/subscribe" and b"x/y" in m.payload][0]
    assert b"subscribed to 'x/y'" in sub.payload and not sub.retain
    assert not any(m.topic == "$SYS/broker/log/D" for m in msgs)   # never debug
