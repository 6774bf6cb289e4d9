"""Mosquitto configurations move over unchanged (issue 14).

Every key of mosquitto.conf(5) for Mosquitto 2.0 (the man page Debian ships, 2.0.11),
the plugin keys and the 2.1 additions is known to tmqtt: implemented (a sample value
passes `tmqtt-broker --test-config`) or refused with a reason of its own (the error
names the file, the line and the key, never "unknown configuration key"). The keys of
Debian's example mosquitto.conf are all in that list, each of its example lines is
checked, and Debian's packaged /etc/mosquitto/mosquitto.conf, with its paths moved to a
temporary directory and nothing else changed, starts a broker that serves
mosquitto_pub / mosquitto_sub.

Bridge keys are checked inside a bridge (after `connection NAME`, with an address and a
topic), as Mosquitto reads them.

These test tmqtt's parser, so they are tmqtt-only.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import broker_command, free_port
from helpers import wait_for

pytestmark = pytest.mark.tmqtt_only

EXAMPLE = "/usr/share/doc/mosquitto/examples/mosquitto.conf"
PACKAGED = "/etc/mosquitto/mosquitto.conf"

# The WebSockets keys belong to the WebSockets work (its own issue): until it lands
# they may still be unknown here, and the tests say so instead of failing.
WEBSOCKETS = {"http_dir", "websockets_headers_size", "websockets_log_level",
              "websockets_origin"}

BRIDGE = {"connection", "address", "addresses", "bridge_alpn", "bridge_attempt_unsubscribe",
          "bridge_bind_address", "bridge_cafile", "bridge_capath", "bridge_certfile",
          "bridge_identity", "bridge_insecure", "bridge_keyfile", "bridge_max_packet_size",
          "bridge_outgoing_retain", "bridge_protocol_version", "bridge_psk",
          "bridge_require_ocsp", "bridge_tls_version", "bridge_tls_use_os_certs",
          "bridge_receive_maximum", "bridge_session_expiry_interval",
          "bridge_max_topic_alias", "cleansession", "local_cleansession", "idle_timeout",
          "keepalive_interval", "local_clientid", "local_password", "local_username",
          "notifications", "notifications_local_only", "notification_topic",
          "remote_clientid", "remote_password", "remote_username", "restart_timeout",
          "round_robin", "start_type", "threshold", "topic", "try_private"}
PLUGIN = {"auth_plugin", "plugin", "auth_opt_db_host", "plugin_opt_db_host",
          "auth_plugin_deny_special_chars", "global_plugin", "global_plugin_opt_x",
          "plugin_load", "plugin_use"}
# bridge key -> a sample value tmqtt accepts inside a bridge
BRIDGE_ACCEPTED = {
    "connection": "other", "address": "127.0.0.1:1884 [::1]:1885 cloud.example",
    "addresses": "127.0.0.1:1884", "bridge_alpn": "mqtt\nbridge_cafile {f}",
    "bridge_attempt_unsubscribe": "true", "bridge_cafile": "{f}", "bridge_capath": "{d}",
    "bridge_certfile": "{f}\nbridge_keyfile {f}\nbridge_cafile {f}",
    "bridge_identity": "edge\nbridge_psk 0a1b2c", "bridge_insecure": "false",
    "bridge_keyfile": "{f}\nbridge_certfile {f}\nbridge_cafile {f}",
    "bridge_max_packet_size": "0", "bridge_outgoing_retain": "true",
    "bridge_protocol_version": "mqttv50", "bridge_psk": "0a1b2c\nbridge_identity edge",
    "bridge_require_ocsp": "false", "bridge_tls_version": "tlsv1.3\nbridge_cafile {f}",
    "bridge_tls_use_os_certs": "true",
    "bridge_receive_maximum": "100\nbridge_protocol_version mqttv50",
    "bridge_session_expiry_interval": "3600\nbridge_protocol_version mqttv50",
    "bridge_max_topic_alias": "10\nbridge_protocol_version mqttv50",
    "cleansession": "false", "local_cleansession": "true", "idle_timeout": "60",
    "keepalive_interval": "60", "local_clientid": "local.edge", "local_password": "secret",
    "local_username": "bridge", "notifications": "true", "notifications_local_only": "false",
    "notification_topic": "bridges/edge/state", "remote_clientid": "edge",
    "remote_password": "secret", "remote_username": "edge", "restart_timeout": "5 30",
    "round_robin": "false", "start_type": "automatic", "threshold": "10",
    "topic": "sensors/# out 1 site/ cloud/site/", "try_private": "true",
    "bridge_attestation_policy": "{f}\nbridge_cafile {f}",
    "bridge_attestation_provider": "sim\nbridge_attestation_opt measurement=00\nbridge_cafile {f}",
}
BRIDGE_REFUSED = {"bridge_bind_address"}
assert BRIDGE == set(BRIDGE_ACCEPTED) - {"bridge_attestation_policy",
                                          "bridge_attestation_provider"} | BRIDGE_REFUSED
REFUSED = BRIDGE_REFUSED | PLUGIN | {"tls_engine", "tls_engine_kpass_sha1"}
IN_BRIDGE = "connection edge\naddress 127.0.0.1:1884\ntopic t/# both 1\n"

# key -> a sample value tmqtt must accept ({d}: a scratch directory, {f}: a file in it).
ACCEPTED = {
    # general options
    "acl_file": "{f}", "allow_anonymous": "true", "allow_duplicate_messages": "false",
    "allow_zero_length_clientid": "true", "auto_id_prefix": "auto-",
    "autosave_interval": "1800", "autosave_on_changes": "false",
    "check_retain_source": "true", "clientid_prefixes": "secure-",
    "connection_messages": "true", "include_dir": "{d}", "log_dest": "stderr",
    "log_facility": "5", "log_timestamp": "true",
    "log_timestamp_format": "%Y-%m-%dT%H:%M:%S", "log_type": "information",
    "max_inflight_bytes": "0", "max_inflight_messages": "20", "max_keepalive": "65535",
    "max_packet_size": "0", "max_queued_bytes": "0", "max_queued_messages": "1000",
    "memory_limit": "0", "message_size_limit": "0", "password_file": "{f}",
    "per_listener_settings": "false", "persistence": "false",
    "persistence_file": "mosquitto.db", "persistence_location": "{d}/",
    "persistent_client_expiration": "14d", "pid_file": "{d}/tmqtt.pid", "psk_file": "{f}",
    "queue_qos0_messages": "false", "retain_available": "true", "set_tcp_nodelay": "false",
    "sys_interval": "10", "upgrade_outgoing_qos": "false", "user": "nobody",
    # listeners
    "bind_address": "127.0.0.1", "bind_interface": "lo", "listener": "1883 127.0.0.1",
    "max_connections": "-1", "max_qos": "2", "maximum_qos": "2", "max_topic_alias": "10",
    "mount_point": "tenant/", "port": "1883", "protocol": "mqtt", "socket_domain": "ipv4",
    "use_username_as_clientid": "false",
    # TLS
    "cafile": "{f}", "capath": "{d}", "certfile": "{f}\nkeyfile {f}", "ciphers": "DEFAULT",
    "ciphers_tls1.3": "TLS_AES_128_GCM_SHA256", "crlfile": "{f}", "dhparamfile": "{f}",
    "keyfile": "{f}\ncertfile {f}", "require_certificate": "false", "tls_keyform": "pem",
    "tls_version": "tlsv1.2", "use_identity_as_username": "false",
    "use_subject_as_username": "false", "psk_hint": "hint\npsk_file {f}",
    # Mosquitto 2.1 additions
    "accept_protocol_versions": "4, 5", "retain_expiry_interval": "3600",
}

# mosquitto.conf(5) of Mosquitto 2.0.11 (Debian 12), every key it documents, and the
# keys the 2.0 binary also reads (plugin, plugin_opt_*, addresses).
MAN_2_0 = (set(ACCEPTED) - {"accept_protocol_versions", "retain_expiry_interval"}) | {
    "auth_opt_db_host", "auth_plugin", "auth_plugin_deny_special_chars", "plugin",
    "plugin_opt_db_host", "tls_engine", "tls_engine_kpass_sha1",
    "http_dir", "websockets_headers_size", "websockets_log_level"} | (
    BRIDGE - {"bridge_tls_use_os_certs", "bridge_receive_maximum",
              "bridge_session_expiry_interval", "bridge_max_topic_alias"})


def check_config(build_dir, tmp_path, text):
    """Run `tmqtt-broker --test-config` on a file with `text`; (rc, output, path)."""
    conf = tmp_path / "t.conf"
    conf.write_text(text + "\n")
    cmd = broker_command("native", build_dir, str(conf), ["--test-config"])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=10, cwd=str(tmp_path))
    return p.returncode, p.stdout.decode("utf-8", "replace"), conf


@pytest.fixture
def scratch(tmp_path):
    d = tmp_path / "scratch"
    d.mkdir()
    f = d / "file.txt"
    f.write_text("")
    return {"d": str(d), "f": str(f)}


@pytest.mark.parametrize("key", sorted(ACCEPTED))
def test_key_accepted(broker_kind, build_dir, tmp_path, scratch, key):
    if broker_kind != "native":
        pytest.skip("--test-config is run on the native binary")
    rc, out, _ = check_config(build_dir, tmp_path, "%s %s" % (key, ACCEPTED[key].format(**scratch)))
    assert rc == 0 and "configuration valid" in out, out


@pytest.mark.parametrize("key", sorted(BRIDGE_ACCEPTED))
def test_bridge_key_accepted(broker_kind, build_dir, tmp_path, scratch, key):
    if broker_kind != "native":
        pytest.skip("--test-config is run on the native binary")
    line = "%s %s" % (key, BRIDGE_ACCEPTED[key].format(**scratch))
    if key == "connection":   # a second bridge, complete
        line += "\naddress 127.0.0.1:1885\ntopic u/#"
    rc, out, _ = check_config(build_dir, tmp_path, IN_BRIDGE + line)
    assert rc == 0 and "configuration valid" in out, out


@pytest.mark.parametrize("key", sorted(REFUSED))
def test_key_refused_with_reason(broker_kind, build_dir, tmp_path, key):
    if broker_kind != "native":
        pytest.skip("--test-config is run on the native binary")
    pre = IN_BRIDGE if key in BRIDGE else ""
    rc, out, conf = check_config(build_dir, tmp_path, "%s# refused\n%s value" % (pre, key))
    assert rc == 3, out
    assert "unknown configuration key" not in out, out
    assert "%s:%d: %s: " % (conf, pre.count("\n") + 2, key) in out, out
    why = out.split("%s: " % key, 1)[1]
    if key in BRIDGE:
        assert "not implemented" in why, out
    elif key in PLUGIN:
        assert "password_file" in why and "acl_file" in why, out   # what to use instead
    else:
        assert "PEM" in why, out


REFUSED_VALUES = [
    ("memory_limit 1000000", "cannot enforce a heap limit"),
    ("tls_keyform engine", "OpenSSL engines"),
    ("tls_version tlsv1.1", "TLS 1.1 is not offered"),
    ("log_dest dlt", "Diagnostic Log and Trace"),
    ("listener 0 /run/tmqtt.sock", "Unix domain socket"),
    ("log_type verbose", "unknown type 'verbose'"),
    ("log_facility 8", "out of range"),
    ("accept_protocol_versions 4, 6", "expected a list of 3, 4 and 5"),
    ("mount_point a/+/", "without wildcards"),
    ("per_listener_settings true\nlistener 1883\npassword_file /dev/null",
     "per-listener ones are not implemented"),
    ("listener 1883\npsk_hint h", "psk_hint needs a psk_file"),
    ("include_dir /nonexistent/tmqtt.d", "include_dir /nonexistent/tmqtt.d"),
    ("address 127.0.0.1", "a bridge key before any `connection NAME`"),
    (IN_BRIDGE + "start_type lazy", "start_type lazy: not implemented"),
    (IN_BRIDGE + "bridge_require_ocsp true", "OCSP"),
    (IN_BRIDGE + "topic a/# sideways", "expected out, in or both"),
    ("connection edge\ntopic t/#", "connection edge: no address"),
    (IN_BRIDGE + "bridge_attestation_policy /p.json", "bridge attestation needs TLS 1.3"),
]


@pytest.mark.parametrize("text,why", REFUSED_VALUES,
                         ids=[r[0].split("\n")[-1].split()[0] for r in REFUSED_VALUES])
def test_value_refused_with_reason(broker_kind, build_dir, tmp_path, text, why):
    if broker_kind != "native":
        pytest.skip("--test-config is run on the native binary")
    rc, out, conf = check_config(build_dir, tmp_path, text)
    assert rc == 3 and str(conf) + ":" in out and why in out, out


def example_keys():
    with open(EXAMPLE) as f:
        return [m.group(1) for m in (re.match(r"^#([a-z_0-9.]+)(\s|$)", l) for l in f) if m]


def test_man_page_keys_all_listed():
    """The lists above are complete: every key mosquitto.conf(5) documents is in them."""
    page = "/usr/share/man/man5/mosquitto.conf.5.gz"
    if not os.path.exists(page):
        pytest.skip("mosquitto.conf(5) is not installed (apt-get install mosquitto)")
    import gzip
    text = gzip.open(page, "rt", errors="replace").read().replace("\\&", "")
    documented = set(re.findall(r"^\.PP\n\\fB([a-z_0-9.*]+)\\fR", text, re.M))
    documented -= {"mosquitto", "mosquitto.conf"}
    ours = set(ACCEPTED) | REFUSED | BRIDGE | WEBSOCKETS | {"auth_opt_*", "plugin_opt_*"}
    assert len(documented) > 100, documented
    assert documented - ours == set()
    assert MAN_2_0 - (set(ACCEPTED) | REFUSED | BRIDGE | WEBSOCKETS) == set()


def test_debian_example_keys_all_known(broker_kind, build_dir, tmp_path, scratch):
    """Debian's example mosquitto.conf: its 90 keys, each of its lines as written."""
    if broker_kind != "native":
        pytest.skip("--test-config is run on the native binary")
    if not os.path.exists(EXAMPLE):
        pytest.fail("%s missing (apt-get install mosquitto: scripts/setup does)" % EXAMPLE)
    keys = set(example_keys())
    assert len(keys) == 90, sorted(keys)
    ours = set(ACCEPTED) | REFUSED | BRIDGE | WEBSOCKETS
    assert keys - ours == set()
    unknown = []
    with open(EXAMPLE) as f:
        for line in f:
            m = re.match(r"^#(([a-z_0-9.]+) .+)$", line.rstrip("\n"))
            if not m or m.group(2) in WEBSOCKETS:
                continue
            text = m.group(1)
            if m.group(2) in ("log_dest",) and text.endswith("file"):
                text += " " + scratch["f"]
            bridge = m.group(2) in BRIDGE
            rc, out, _ = check_config(build_dir, tmp_path, (IN_BRIDGE if bridge else "") + text)
            # the example's bridge lines carry placeholders (<host>, <name>): refused
            # values are fine there, as long as the key is known and the reason given
            placeholder = bridge and "<" in text and ": " in out
            if "unknown configuration key" in out or (
                    rc != 0 and m.group(2) not in REFUSED and not placeholder):
                unknown.append((text, out.strip()))
    assert not unknown, unknown
    rc, out, _ = check_config(build_dir, tmp_path, "http_dir /tmp")
    if "unknown configuration key" in out:
        pytest.skip("the WebSockets keys (http_dir, websockets_*) arrive with the WebSockets "
                    "work; every other key of the example is known")


def test_debian_packaged_conf_starts(broker, broker_kind):
    """/etc/mosquitto/mosquitto.conf as Debian installs it, paths moved, contents kept."""
    if broker_kind != "native":
        pytest.skip("needs the native broker (pid_file)")
    if not os.path.exists(PACKAGED):
        pytest.fail("%s missing (apt-get install mosquitto: scripts/setup does)" % PACKAGED)
    # A directory the unprivileged broker can write (conftest runs a broker without a
    # configuration as nobody when the tests run as root).
    d = tempfile.mkdtemp(prefix="tmqtt-debconf-")
    try:
        os.chmod(d, 0o777)
        for sub in ("run", "lib", "log", "conf.d"):
            os.mkdir(os.path.join(d, sub))
            os.chmod(os.path.join(d, sub), 0o777)
        with open(PACKAGED) as f:
            text = f.read()
        moved = (text.replace("/run/mosquitto/", d + "/run/")
                     .replace("/var/lib/mosquitto/", d + "/lib/")
                     .replace("/var/log/mosquitto/", d + "/log/")
                     .replace("/etc/mosquitto/conf.d", d + "/conf.d"))
        assert moved != text and "mosquitto/" not in moved.replace("/doc/mosquitto/", "")
        conf = os.path.join(d, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(moved)
        os.chmod(conf, 0o644)
        with open(os.path.join(d, "conf.d", "README"), "w") as f:
            f.write("Any files placed in this directory with a .conf ending ...\n")
        port = free_port()
        b = broker(None, args=["-c", conf, "-p", str(port)], port=port)
        pid_file = os.path.join(d, "run", "mosquitto.pid")
        wait_for(lambda: os.path.exists(pid_file), what="pid file")
        assert open(pid_file).read().strip() == str(b.proc.pid)
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t",
                                "deb/conf", "-C", "1", "-W", "10"], stdout=subprocess.PIPE)
        try:
            deadline_ok = False
            for _ in range(100):
                subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t",
                                "deb/conf", "-m", "hello from Debian's conf"], check=True)
                try:
                    out, _ = sub.communicate(timeout=0.1)
                    deadline_ok = True
                    break
                except subprocess.TimeoutExpired:
                    continue
            assert deadline_ok, "mosquitto_sub got nothing"
            assert out.decode().strip() == "hello from Debian's conf"
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
        log = open(os.path.join(d, "log", "mosquitto.log")).read()
        assert "listening on 127.0.0.1 port %d" % port in log, log
        b.stop()
        assert not os.path.exists(pid_file), "pid file left behind"
    finally:
        shutil.rmtree(d, ignore_errors=True)
