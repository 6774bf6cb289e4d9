"""Configuration file handling and the broker's command line.

Config errors: tmqtt refuses unknown keys and bad values, exiting non-zero with a
message that starts `FILE:LINE:` (architecture.md: "Unknown keys and bad values are
errors with file and line, never ignored"). Mosquitto reports them differently, so
those tests are tmqtt-only. Command line: `-c FILE`, `-p PORT` (no config: loopback
listener, anonymous allowed, like Mosquitto 2.0's local-only mode), `-v` (verbose:
client connections are logged with their client id), unknown option -> non-zero exit.
"""

import os
import subprocess

import pytest

import rawmqtt as R
from conftest import broker_command, free_port, port_open
from helpers import V311, Client, uid, wait_logged


def run_to_exit(b, timeout=10):
    """Run a broker expected to refuse to start; return (exit code, output)."""
    try:
        p = subprocess.run(b.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout, cwd=b.workdir)
    except subprocess.TimeoutExpired:
        pytest.fail("broker kept running with an invalid configuration: %s" % b.cmd)
    return p.returncode, p.stdout.decode("utf-8", "replace")


BAD_CONFIGS = [
    ("unknown_key", "no_such_option 1"),
    ("misspelt_key", "allow_anonymus true"),
    ("bad_bool", "allow_anonymous maybe"),
    ("bad_number", "max_inflight_messages banana"),
    ("negative_size", "max_packet_size -5"),
    ("number_with_junk", "max_queued_messages 10x"),
    ("missing_value", "sys_interval"),
    ("bad_port", "listener 99999 127.0.0.1"),
    ("missing_password_file", "password_file /nonexistent/tmqtt/passwd"),
]


@pytest.mark.tmqtt_only
@pytest.mark.parametrize("line", [c[1] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_config_error_reports_file_and_line(broker, line):
    b = broker(["# a comment", "", line, "persistence false"], start=False)
    lineno = b.conf_lines.index(line) + 1
    rc, out = run_to_exit(b)
    assert rc != 0 and rc > 0, "exit code %d, output:\n%s" % (rc, out)
    where = "%s:%d:" % (os.path.basename(b.conf_path), lineno)
    assert where in out, "expected %r in output:\n%s" % (where, out)


@pytest.mark.tmqtt_only
def test_missing_config_file(broker, tmp_path):
    b = broker([], start=False)
    missing = str(tmp_path / "does-not-exist.conf")
    b.cmd = [missing if a == b.conf_path else a for a in b.cmd]
    rc, out = run_to_exit(b)
    assert rc > 0 and "does-not-exist.conf" in out, out


def test_comments_and_blank_lines_accepted(broker):
    b = broker(["", "# comment line", "   ", "# another: with punctuation = ;", ""])
    with R.RawClient(b.port, V311) as c:
        c.connect(uid())


def test_dash_p_port(broker):
    port = free_port()
    b = broker(None, args=["-p", str(port)], port=port)
    assert b.port == port and port_open(port)
    c = Client.connected(port)
    c.subscribe("x", 1)
    c.publish("x", b"on -p port", qos=1)
    assert c.get().payload == b"on -p port"


def test_dash_v_logs_connections(broker):
    b = broker([], args=["-v"])
    cid = uid("verbose")
    with R.RawClient(b.port, V311) as c:
        c.connect(cid)
        c.ping()
    wait_logged(b, cid, cid)   # -v: both brokers log the client id


def test_unknown_option_fails(broker_kind, build_dir):
    try:
        cmd = broker_command(broker_kind, build_dir, None, ["--no-such-option"])
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("broker started despite an unknown option")
    assert p.returncode > 0, p.stdout
