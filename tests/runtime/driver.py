#!/usr/bin/python3
"""driver.py — runs one tmqtt-wasm test case (tests/runtime/CMakeLists.txt: one add_test each).

Each case starts the runtime built around t_wasi.wasm (or t_tls.wasm) with the options
under test, in a fresh temporary directory, and checks output and exit status. Prints
one line per check and a summary "N passed, M failed"; exit status 0 only if all passed.
Only loopback is used, with ports chosen by the kernel.
"""
import argparse
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TRAP_EXIT = 134

class Ctx:
    def __init__(self, args, tmp):
        self.rt = args.runtime
        self.hello = args.hello
        self.module = args.module
        self.testdata = args.testdata
        self.host_rt = args.host_rt
        self.host_module = args.host_module
        self.broker = args.broker
        self.broker_module = args.broker_module
        self.tmp = tmp
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print(f"PASS {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f"\n  {detail}" if detail else ""))

    def run(self, opts, margs=(), timeout=30, stdin=None, binary=None):
        cmd = [binary or self.rt] + list(opts) + (["--"] + list(margs) if margs else [])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin, cwd=self.tmp)
        return p

    def sandbox(self):
        """tmp/sandbox (preopened as /sandbox) next to tmp/outside (must stay unreachable)."""
        sb = os.path.join(self.tmp, "sandbox")
        out = os.path.join(self.tmp, "outside")
        os.makedirs(os.path.join(sb, "sub"), exist_ok=True)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "secret.txt"), "w") as f:
            f.write("secret\n")
        with open(os.path.join(sb, "inside.txt"), "w") as f:
            f.write("inside\n")
        for name, target in (("esc", "../outside"), ("abs", "/etc"), ("sub/up", ".."), ("loop", "loop")):
            p = os.path.join(sb, name)
            if not os.path.lexists(p):
                os.symlink(target, p)
        return sb


def all_ok(c, p, what):
    """Module printed ok/FAIL lines and PASSED; exit 0."""
    fails = [l for l in p.stdout.splitlines() if l.startswith("FAIL")]
    c.check(p.returncode == 0 and "PASSED" in p.stdout and not fails, what,
            f"rc={p.returncode} fails={fails} stderr={p.stderr.strip()[:500]}")


def case_args(c):
    p = c.run([], ["args", "a b", "", "ünï"])
    c.check(p.returncode == 0, "exit 0")
    c.check("argc=5" in p.stdout, "argc counts module name + 4", p.stdout)
    c.check("argv[0]=t_wasi.wasm" in p.stdout, "argv[0] is the module name", p.stdout)
    c.check("argv[2]=a b" in p.stdout and "argv[3]=\n" in p.stdout and "argv[4]=ünï" in p.stdout,
            "arguments passed verbatim (spaces, empty, UTF-8)", p.stdout)


def case_env(c):
    os.environ["TM_LEAK_CHECK"] = "host-only"
    p = c.run(["--env", "TM_TEST=42", "--env", "B=x=y"], ["env"])
    c.check("TM_TEST=42" in p.stdout and "env B=x=y" in p.stdout, "--env variables visible", p.stdout)
    c.check("envc=3" in p.stdout and "TM_LEAK_CHECK" not in p.stdout,
            "host environment not leaked (the two --env and the runtime's announcement)", p.stdout)
    p = c.run([], ["env"])
    c.check("envc=1" in p.stdout and "env TMQTT_HOST_IMPORTS=tmqtt_ra,tmqtt_crypto,tmqtt_seal,tmqtt_event\n" in p.stdout,
            "by default only TMQTT_HOST_IMPORTS, naming the four extension imports", p.stdout)
    p = c.run(["--omit-import", "all"], ["env"])
    c.check("envc=0" in p.stdout, "--omit-import all: empty environment", p.stdout)
    p = c.run(["--env", "TMQTT_HOST_IMPORTS=tmqtt_crypto"], ["env"])
    c.check(p.returncode == 2 and "set by the runtime" in p.stderr, "the announcement cannot be forged with --env",
            p.stderr)


def case_clock(c):
    all_ok(c, c.run([], ["clock"]), "clocks and nanosleep")


def case_random(c):
    all_ok(c, c.run([], ["random"]), "random_get")


def case_exit_code(c):
    for code in (0, 1, 42, 255):
        p = c.run([], ["exit", str(code)])
        c.check(p.returncode == code, f"proc_exit({code}) propagated", f"rc={p.returncode}")


def case_return_code(c):
    p = c.run([], ["return", "7"])
    c.check(p.returncode == 7, "return 7 from main propagated", f"rc={p.returncode}")


def case_proc_exit_zero(c):
    p = c.run([], ["return", "0"])
    c.check(p.returncode == 0 and p.stderr == "", "clean exit 0, nothing on stderr", p.stderr)


def case_fdstat(c):
    sb = c.sandbox()
    all_ok(c, c.run(["--dir", f"{sb}::/sandbox"], ["fdstat"]), "fdstat / prestat")


def case_files(c):
    sb = c.sandbox()
    all_ok(c, c.run(["--dir", f"{sb}::/sandbox"], ["files"]), "file and directory calls")
    c.check(not os.path.exists(os.path.join(sb, "d")), "module cleaned up after itself")


def case_confine(c):
    sb = c.sandbox()
    before = sorted(os.listdir(c.tmp))
    p = c.run(["--dir", f"{sb}::/sandbox"], ["confine"])
    all_ok(c, p, "path confinement (.., absolute, symlinks)")
    c.check(sorted(os.listdir(c.tmp)) == before, "nothing created outside the preopen", str(os.listdir(c.tmp)))
    c.check(open(os.path.join(c.tmp, "outside", "secret.txt")).read() == "secret\n", "outside file untouched")


def read_until(proc, out, marker, timeout=20):
    """Reads proc's stdout (bytes) onto `out` until `marker` is in it, the pipe closes
    or the deadline passes; returns what was read."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while marker not in out:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    return out


def wait_blocked(proc, timeout=20):
    """Until the process sleeps in the kernel (state S in /proc/PID/stat), e.g. in
    poll(), or has exited; the deadline passes quietly: the checks then fail."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "S":
                    return
        except OSError:
            return
        time.sleep(0.005)


def case_poll(c):
    proc = subprocess.Popen([c.rt, "--", "poll"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # the module flushes a line, then blocks in poll() on stdin: wake it only then, so
    # that the poll is woken by the data, not handed data already there
    out = read_until(proc, b"", b"poll waited 50 ms")
    wait_blocked(proc)
    proc.stdin.write(b"wake\n")
    proc.stdin.flush()
    # likewise the hangup: once it has read "wake" and blocks in poll() again
    out = read_until(proc, out, b"read what woke us")
    wait_blocked(proc)
    proc.stdin.close()
    proc.wait(timeout=20)
    out = (out + proc.stdout.read()).decode(errors="replace")
    err = proc.stderr.read().decode(errors="replace")
    fails = [l for l in out.splitlines() if l.startswith("FAIL")]
    c.check(proc.returncode == 0 and "PASSED" in out, "poll_oneoff clocks, fd read/write, hangup",
            f"rc={proc.returncode} {fails} {err}")


def trap_case(kind, message, function):
    def run(c):
        p = c.run([], ["trap", kind])
        c.check(p.returncode == TRAP_EXIT, f"trap {kind}: exit {TRAP_EXIT}", f"rc={p.returncode} {p.stderr}")
        c.check(f"tmqtt-wasm: trap: {message}" in p.stderr, f"trap {kind}: message names the trap", p.stderr)
        c.check(f"in function {function}" in p.stderr, f"trap {kind}: message names the function", p.stderr)
    return run


def case_max_memory(c):
    p = c.run([], ["memory", "64"])
    c.check("allocated 64 MiB" in p.stdout, "64 MiB allocatable without a limit", p.stdout + p.stderr)
    p = c.run(["--max-memory", "16M"], ["memory", "64"])
    got = int(p.stdout.split()[1]) if p.stdout.startswith("allocated") else -1
    c.check(p.returncode == 0 and 0 < got < 16, "--max-memory 16M: malloc fails cleanly below 16 MiB",
            p.stdout + p.stderr)


def case_max_memory_too_small(c):
    p = c.run(["--max-memory", "64K"], ["args"])
    c.check(p.returncode == 1 and "more than --max-memory" in p.stderr,
            "start refused when initial memory exceeds --max-memory", p.stderr)


def case_module_check(c):
    p = c.run([c.module], ["args"])
    c.check(p.returncode == 0, "matching module.wasm accepted", p.stderr)
    other = os.path.join(c.tmp, "other.wasm")
    with open(other, "wb") as f:
        f.write(b"\0asm\1\0\0\0")
    p = c.run([other], ["args"])
    c.check(p.returncode == 1 and "is not the module this runtime was built with" in p.stderr,
            "different module.wasm refused", p.stderr)
    p = c.run(["--print-measurement"])
    import hashlib
    want = hashlib.sha256(open(c.module, "rb").read()).hexdigest()
    c.check(p.stdout.split()[0] == want, "--print-measurement is the SHA-256 of the .wasm", p.stdout)


def case_bad_options(c):
    for opts, what in ((["--nope"], "unknown option"), (["--dir"], "missing value"),
                       (["--addr-pool", "300.1.1.1/8"], "bad pool"), (["--max-memory", "lots"], "bad size"),
                       (["--dir", "/nonexistent-dir-xyz"], "missing preopen"),
                       (["--attest", "bogus"], "unknown provider")):
        p = c.run(opts, ["args"])
        c.check(p.returncode in (1, 2) and p.stderr.startswith("tmqtt-wasm:") and "argc=" not in p.stdout,
                f"{what}: refused before running", f"rc={p.returncode} {p.stderr}")


def case_ra_none(c):
    p = c.run([], ["ra"])
    c.check("formats errno=0 bytes=0" in p.stdout, "none: no formats", p.stdout)
    c.check("collect small errno=58" in p.stdout, "none: collect -> ENOTSUP", p.stdout)
    c.check("collect bad pointer errno=21" in p.stdout, "bad pointer -> EFAULT", p.stdout)


def case_ra_sim(c):
    key = os.path.join(c.tmp, "sim-key.pem")
    p = c.run(["--attest", "sim", "--attest-opt", f"key={key}"], ["ra"])
    c.check("formats errno=0 bytes=2 0x0001" in p.stdout, "sim: format 0x0001 offered", p.stdout + p.stderr)
    c.check("collect small errno=42" in p.stdout, "small buffer -> ENOBUFS with the needed size", p.stdout)
    m = c.run(["--print-measurement"]).stdout.split()[0]
    c.check(f"magic=TMQSIM01 measurement={m}" in p.stdout, "sim evidence measures the embedded .wasm", p.stdout)
    c.check("report_data_bound=1" in p.stdout, "report data carried into the evidence", p.stdout)
    c.check(os.path.exists(key), "provider key stays on the host side")


def case_ra_gramine_fake(c):
    """Gramine's /dev/attestation as a fake tree: the plumbing, not the hardware."""
    root = os.path.join(c.tmp, "attestation")
    os.makedirs(root)
    quote = open(os.path.join(c.testdata, "sgx", "quote.bin"), "rb").read()
    open(os.path.join(root, "quote"), "wb").write(quote)
    open(os.path.join(root, "user_report_data"), "wb").close()
    open(os.path.join(root, "attestation_type"), "w").write("dcap\n")
    p = c.run(["--attest", "gramine", "--attest-opt", f"root={root}"], ["ra", "2"])
    c.check("formats errno=0 bytes=2 0x0002" in p.stdout, "gramine: sgx-dcap offered", p.stdout + p.stderr)
    c.check(f"collect errno=0 len={len(quote)}" in p.stdout, "the quote reaches the module", p.stdout + p.stderr)
    rd = open(os.path.join(root, "user_report_data"), "rb").read()
    c.check(rd == bytes(0xa0 + i for i in range(64)), "the module's report data reached user_report_data", rd.hex())
    p = c.run(["--attest", "gramine", "--attest-opt", f"root={root}"], ["ra", "1"])
    c.check("collect small errno=58" in p.stdout, "format not offered -> ENOTSUP", p.stdout)


def case_ra_tsm_fake(c):
    """configfs-tsm as a fake tree with a fixed entry (a real configfs creates the files)."""
    root = os.path.join(c.tmp, "tsm")
    entry = os.path.join(root, "e0")
    os.makedirs(entry)
    quote = open(os.path.join(c.testdata, "tdx", "quote.bin"), "rb").read()
    for name, data in (("outblob", quote), ("provider", b"tdx_guest\n"), ("generation", b"1\n"), ("inblob", b"")):
        open(os.path.join(entry, name), "wb").write(data)
    p = c.run(["--attest", "tsm", "--attest-opt", f"root={root}", "--attest-opt", "entry=e0"], ["ra", "3"])
    c.check("formats errno=0 bytes=2 0x0003" in p.stdout, "tsm: tdx-dcap offered", p.stdout + p.stderr)
    c.check(f"collect errno=0 len={len(quote)}" in p.stdout, "the TD quote reaches the module", p.stdout + p.stderr)
    inblob = open(os.path.join(entry, "inblob"), "rb").read()
    c.check(inblob == bytes(0xa0 + i for i in range(64)), "the module's report data reached inblob", inblob.hex())


def echo_case(host, family):
    def run(c):
        proc = subprocess.Popen([c.rt, "--addr-pool", "127.0.0.1/32,::1/128", "--", "echo-server", host],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        port = None
        while line:
            if line.startswith("PORT "):
                port = int(line.split()[1])
                break
            line = proc.stdout.readline()
        c.check(port is not None and port > 0, f"module listens on {host}:0 and reports its port", line)
        if port is None:
            proc.kill()
            return
        payload = os.urandom(200000)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect((host, port))
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        out, err = proc.communicate(timeout=20)
        c.check(got == payload, f"echoed 200000 random bytes over {host}", f"got {len(got)}")
        c.check(proc.returncode == 0 and "PASSED" in out, "server module checks passed",
                f"rc={proc.returncode} {out} {err}")
        c.check(f"peer {host}" in out, "accept() fills the peer address", out)
    return run


def case_sock_pool_refuses_bind(c):
    p = c.run(["--addr-pool", "127.0.0.1/32"], ["bind", "127.0.0.2"])
    c.check(p.returncode == 13 and "refused errno 2" in p.stdout, "127.0.0.2 refused with EACCES when pool is 127.0.0.1/32",
            p.stdout + p.stderr)
    c.check("bind to 127.0.0.2 port 0 refused: not in --addr-pool" in p.stderr, "refusal logged for the operator",
            p.stderr)
    p = c.run(["--addr-pool", "127.0.0.1/32"], ["bind", "127.0.0.1"])
    c.check(p.returncode == 0, "127.0.0.1 allowed", p.stdout + p.stderr)
    p = c.run(["--addr-pool", "127.0.0.0/8"], ["bind", "127.0.0.2"])
    c.check(p.returncode == 0, "127.0.0.2 allowed by 127.0.0.0/8", p.stdout + p.stderr)
    p = c.run(["--addr-pool", "127.0.0.1/32"], ["bind", "::1"])
    c.check(p.returncode == 13, "::1 refused when pool has only IPv4", p.stdout)


def case_sock_no_pool_refuses(c):
    p = c.run([], ["bind", "127.0.0.1"])
    c.check(p.returncode == 13, "no --addr-pool: bind refused", p.stdout)
    p = c.run([], ["connect", "127.0.0.1", "9"])
    c.check(p.returncode == 13, "no --addr-pool: connect refused", p.stdout)


def case_sock_connect(c):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    proc = subprocess.Popen([c.rt, "--addr-pool", "127.0.0.1", "--", "connect", "127.0.0.1", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    srv.settimeout(10)
    conn, _ = srv.accept()
    data = b""
    while len(data) < len(b"ping from wasm"):
        d = conn.recv(100)
        if not d:
            break
        data += d
    conn.sendall(b"pong from host")
    conn.close()
    srv.close()
    out, err = proc.communicate(timeout=20)
    c.check(data == b"ping from wasm", "host received the module's bytes", repr(data))
    c.check("reply pong from host" in out and proc.returncode == 0, "module received the reply", out + err)


def case_sock_connect_refused(c):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p = c.run(["--addr-pool", "127.0.0.1/32"], ["connect", "127.0.0.1", str(port)])
    c.check(p.returncode == 2 and "errno 14" in p.stdout, "connection refused -> ECONNREFUSED (14)", p.stdout)


def case_resolve(c):
    p = c.run([], ["resolve", "localhost"])
    c.check("addr 127.0.0.1 port 1883" in p.stdout, "localhost resolves to 127.0.0.1", p.stdout + p.stderr)
    p = c.run([], ["resolve", "::1"])
    c.check("addr ::1 port 1883" in p.stdout, "numeric IPv6", p.stdout)
    p = c.run([], ["resolve", "example.invalid"])
    c.check(p.returncode == 2, "names refused without --allow-dns", p.stdout)


def case_hello(c):
    p = c.run([], binary=c.hello)
    c.check(p.returncode == 0 and p.stdout == "hello from wasm\n", "hello module (WASI-only imports)", p.stdout)


def case_startup(c):
    """Start-up time and peak RSS of the runtime with the trivial module (reported, lax bound)."""
    import resource
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run([c.hello], stdout=subprocess.DEVNULL, check=True)
    dt = (time.perf_counter() - t0) / n
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"startup: {dt * 1000:.2f} ms per run (mean of {n}), peak RSS {rss} KiB")
    c.check(dt < 0.5, "start-up under 500 ms", f"{dt}")


HOST_ALG = {"TLS_CHACHA20_POLY1305_SHA256": "ChaCha20-Poly1305", "TLS_AES_128_GCM_SHA256": "AES-128-GCM",
            "TLS_AES_256_GCM_SHA384": "AES-256-GCM", "ECDHE-ECDSA-AES128-GCM-SHA256": "AES-128-GCM",
            "ECDHE-ECDSA-AES256-GCM-SHA384": "AES-256-GCM", "ECDHE-ECDSA-CHACHA20-POLY1305": "ChaCha20-Poly1305"}
SELFTEST_CONTEXTS = 3  # host contexts per algorithm made by the provider's start-up self-test


def case_tls13(c):
    """TLS from inside the module against a native s_server, with the record ciphers in the
    host (tmqtt_crypto) and, with --omit-import, the module's own: TLS 1.3 suites and the
    TLS 1.2 AEAD record formats (GCM explicit nonce, ChaCha20-Poly1305 RFC 7905 nonce)."""
    certs = os.path.join(c.tmp, "certs")
    os.makedirs(certs)
    key, cert = os.path.join(certs, "key.pem"), os.path.join(certs, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    runs = [(suite, []) for suite in HOST_ALG] + [
        ("TLS_AES_128_GCM_SHA256", ["--omit-import", "tmqtt_crypto"]),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", ["--omit-import", "tmqtt_crypto"]),
        ("TLS_CHACHA20_POLY1305_SHA256", ["--omit-import", "all"])]
    for suite, extra in runs:
        tls12 = not suite.startswith("TLS_")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert, "-key", key,
                                "-tls1_2" if tls12 else "-tls1_3", "-rev", "-quiet"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:  # until s_server listens (it survives the probe and keeps accepting)
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.02)
        t0 = time.perf_counter()
        p = c.run(["--trace", "--dir", f"{certs}::/certs", "--addr-pool", "127.0.0.1/32"] + extra,
                  ["127.0.0.1", str(port), "/certs/cert.pem", suite], timeout=60)
        dt = time.perf_counter() - t0
        srv.kill()
        srv.wait()
        label = f"{suite}{' ' + ' '.join(extra) if extra else ''}"
        version = "TLSv1.2" if tls12 else "TLSv1.3"
        c.check("ok sha256" in p.stdout and "ok ecdsa p-256" in p.stdout, "SHA-256 and ECDSA P-256 in wasm",
                p.stdout + p.stderr)
        c.check(f"ok handshake {version} {suite} verify=0" in p.stdout,
                f"{label}: handshake with certificate verification", p.stdout + p.stderr)
        c.check(p.stdout.count("reply ylbmessabew morf olleh") == 2, f"{label}: data through the channel", p.stdout)
        news = p.stderr.count(f"aead_new({HOST_ALG[suite]})")
        if not extra:
            c.check("record crypto: tmqtt-host\n" in p.stdout and news > SELFTEST_CONTEXTS,
                    f"{label}: records protected by the host's {HOST_ALG[suite]}",
                    f"{news} contexts; {p.stdout} {p.stderr[-2000:]}")
        else:
            why = "host did not announce" if "all" in extra else "host does not provide tmqtt_crypto"
            c.check(f"record crypto: default: the {why}" in p.stdout and "tmqtt_crypto" not in p.stderr,
                    f"{label}: the module's built-in ciphers, the import never called", p.stdout + p.stderr)
        print(f"tls: {label}: run incl. keygen+handshake {dt * 1000:.0f} ms")


# -- the host's extension imports (t_host.c) ------------------------------------------------

def host(c, opts, margs, **kw):
    return c.run(opts, margs, binary=c.host_rt, **kw)


def case_imports(c):
    for opts, want in (([], "tmqtt_ra=present tmqtt_crypto=present tmqtt_event=present"),
                       (["--omit-import", "tmqtt_crypto"], "tmqtt_ra=present tmqtt_crypto=absent tmqtt_event=present"),
                       (["--omit-import", "tmqtt_ra"], "tmqtt_ra=absent tmqtt_crypto=present tmqtt_event=present"),
                       (["--omit-import", "tmqtt_event"], "tmqtt_ra=present tmqtt_crypto=present tmqtt_event=absent"),
                       (["--omit-import", "all"], "tmqtt_ra=unknown tmqtt_crypto=unknown tmqtt_event=unknown")):
        p = host(c, opts, ["imports"])
        c.check(want in p.stdout, f"{' '.join(opts) or 'default'}: module reads {want}", p.stdout + p.stderr)
    p = c.run(["--omit-import", "tmqtt_nope"], ["args"])
    c.check(p.returncode == 2 and "want tmqtt_ra, tmqtt_crypto, tmqtt_seal, tmqtt_event or all" in p.stderr, "unknown import name refused",
            p.stderr)


def case_omit_import_traps(c):
    """An omitted import that is called anyway traps like WAMR's unlinked import."""
    p = host(c, ["--omit-import", "tmqtt_crypto"], ["crypto-call"])
    c.check(p.returncode == TRAP_EXIT and "trap: call to unlinked import tmqtt_crypto.aead_new" in p.stderr,
            "tmqtt_crypto.aead_new omitted: trap naming it", f"rc={p.returncode} {p.stderr}")
    p = host(c, ["--omit-import", "all"], ["crypto-call"])
    c.check(p.returncode == TRAP_EXIT and "unlinked import tmqtt_crypto.aead_new" in p.stderr,
            "--omit-import all: same", f"rc={p.returncode} {p.stderr}")
    p = c.run(["--omit-import", "tmqtt_ra"], ["ra"])
    c.check(p.returncode == TRAP_EXIT and "trap: call to unlinked import tmqtt_ra.formats" in p.stderr
            and "in function cmd_ra" in p.stderr,
            "tmqtt_ra.formats omitted: trap naming it and the calling function", f"rc={p.returncode} {p.stderr}")
    p = host(c, [], ["crypto-call"])
    c.check(p.returncode == 0 and "aead_new errno=0" in p.stdout, "provided: the same call works", p.stdout + p.stderr)


def said_before_trap(p, imp):
    """The module named import `imp` on stderr, then the runtime trapped calling it."""
    lines = p.stderr.splitlines()
    notice = next((i for i, l in enumerate(lines) if f"calling host import {imp}" in l), None)
    trap = next((i for i, l in enumerate(lines) if f"trap: call to unlinked import {imp}" in l), None)
    return p.returncode == TRAP_EXIT and notice is not None and trap is not None and notice < trap


def case_ra_require(c):
    """The start-up path of the wasi attestation provider on three kinds of host."""
    p = host(c, [], ["ra-require"])
    c.check(p.returncode == 0 and "formats errno=0" in p.stdout and p.stderr == "",
            "announced: called without a word", p.stdout + p.stderr)
    p = host(c, ["--omit-import", "tmqtt_ra"], ["ra-require"])
    c.check(p.returncode == 3 and "needs the host import tmqtt_ra" in p.stdout and "trap" not in p.stderr,
            "announced absent: clean refusal naming tmqtt_ra, never called", f"rc={p.returncode} {p.stdout} {p.stderr}")
    p = host(c, ["--omit-import", "all"], ["ra-require"])
    c.check(said_before_trap(p, "tmqtt_ra.formats"),
            "not announced (like iwasm): names tmqtt_ra.formats on stderr before the call traps",
            f"rc={p.returncode} {p.stderr}")


def case_crypto_hostile(c):
    all_ok(c, host(c, [], ["crypto"]), "tmqtt_crypto: bounds, overlap, lengths, forged/stale/freed handles")


def case_event(c):
    all_ok(c, host(c, ["--addr-pool", "127.0.0.1/32", "--dir", c.tmp], ["event"]),
           "tmqtt_event: readiness order, level-triggered, hang-ups, closed fds, hostile arguments, set limit")
    p = host(c, ["--addr-pool", "127.0.0.1/32", "--omit-import", "tmqtt_event"], ["event"])
    c.check(p.returncode == TRAP_EXIT and "tmqtt_event.create" in p.stderr,
            "omitted: the first call traps naming tmqtt_event.create", f"rc={p.returncode} {p.stderr}")


def case_crypto_limit(c):
    p = host(c, ["--max-fds", "16"], ["crypto-limit"])
    all_ok(c, p, "tmqtt_crypto: contexts capped at 4 per descriptor")
    c.check("created 64, then errno 41" in p.stdout, "--max-fds 16 -> 64 contexts, then ENFILE", p.stdout)


def reset_server():
    """A listener that reads one byte from its first client, then resets the connection."""
    import struct
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        srv.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv.getsockname()[1], t


def sigpipe_case(how):
    def run(c):
        port, t = reset_server()
        p = host(c, ["--keep-sigpipe", "--addr-pool", "127.0.0.1/32"], ["write-reset", "127.0.0.1", str(port), how])
        t.join(10)
        c.check(p.returncode == 0 and "PASSED" in p.stdout,
                f"{how}() to a reset connection with SIGPIPE at its default: EPIPE, no signal",
                f"rc={p.returncode} {p.stdout} {p.stderr}")
    return run


def case_keep_sigpipe(c):
    """--keep-sigpipe really leaves SIGPIPE at SIG_DFL (SigIgn bit 13 of the running runtime)."""
    for opts, ignored in (([], True), (["--keep-sigpipe"], False)):
        proc = subprocess.Popen([c.host_rt] + opts + ["--", "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        ready = proc.stdout.readline()  # printed by the module, so after the runtime's set-up
        with open(f"/proc/{proc.pid}/status") as f:
            mask = int(next(l for l in f if l.startswith("SigIgn:")).split()[1], 16)
        proc.stdin.close()
        proc.wait(timeout=20)
        c.check(ready == "ready\n" and bool(mask & (1 << (signal.SIGPIPE - 1))) == ignored,
                f"{' '.join(opts) or 'default'}: SIGPIPE {'ignored' if ignored else 'at its default'}",
                f"ready={ready!r} SigIgn={mask:#x}")


def case_memops(c):
    all_ok(c, host(c, [], ["memops"]), "memcpy/memmove/memset semantics")


def bulk_functions(c, module, what):
    p = subprocess.run(["wasm-objdump", "-d", module], capture_output=True, text=True)
    c.check(p.returncode == 0, f"wasm-objdump -d {what}", p.stderr)
    bodies, cur = {}, None
    for line in p.stdout.splitlines():
        if " func[" in line and line.rstrip().endswith(">:"):
            cur = line.split("<")[-1].rstrip(">:")
            bodies[cur] = []
        elif cur:
            bodies[cur].append(line)
    for fn, insn in (("memcpy", "memory.copy"), ("memmove", "memory.copy"), ("memset", "memory.fill")):
        body = " ".join(bodies.get(fn, []))
        c.check(insn in body and " loop" not in body, f"{what}: {fn} is one {insn}, no loop", body[:300])


def case_bulk_memory(c):
    bulk_functions(c, c.host_module, "t_host.wasm")


# -- the broker module on hosts with and without the extension imports ------------------------

def broker_setup(c, attest):
    """A TLS listener on a free port in c.tmp; returns (conf, port, base options)."""
    d = os.path.join(c.tmp, "b")
    os.makedirs(d, exist_ok=True)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(d, "broker.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\ncertfile {cert}\nkeyfile {key}\n"
                + ("attestation_provider sim\n" if attest else ""))
    opts = ["--dir", d, "--addr-pool", "127.0.0.1/32"]
    if attest:
        opts += ["--attest", "sim", "--attest-opt", f"key={os.path.join(d, 'sim.pem')}"]
    return conf, port, opts


def wait_listening(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def case_broker_without_ra(c):
    """A listener with attestation_provider on a host that lacks tmqtt_ra."""
    conf, port, opts = broker_setup(c, attest=True)
    proc = subprocess.Popen([c.broker] + opts + ["--", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    up = wait_listening(port, proc)
    proc.terminate()
    err = proc.communicate(timeout=20)[1]
    c.check(up, "control: with tmqtt_ra the attested listener starts", err)
    p = c.run(opts + ["--omit-import", "tmqtt_ra"], ["-c", conf], binary=c.broker, timeout=30)
    c.check(p.returncode not in (0, TRAP_EXIT) and "needs the host import tmqtt_ra" in p.stderr
            and "trap" not in p.stderr,
            "announced without tmqtt_ra: the broker refuses to start and names the import (no trap)",
            f"rc={p.returncode} {p.stderr}")
    p = c.run(opts + ["--omit-import", "all"], ["-c", conf], binary=c.broker, timeout=30)
    c.check(said_before_trap(p, "tmqtt_ra.formats"),
            "a host like iwasm: the broker names tmqtt_ra.formats before the call that traps",
            f"rc={p.returncode} {p.stderr}")


def mqtt_over_tls(port, tls12_cipher=None):
    """CONNECT over TLS (1.3, or 1.2 with one cipher); returns (negotiated cipher, CONNACK ok)."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12_cipher:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(tls12_cipher)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as t:
            t.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02cx")
            got = b""
            while len(got) < 4:
                d = t.recv(4 - len(got))
                if not d:
                    break
                got += d
            return t.cipher()[0], got == b"\x20\x02\x00\x00"


def case_broker_host_crypto(c):
    """The broker's TLS records go through tmqtt_crypto when the host has it, and work without."""
    conf, port, opts = broker_setup(c, attest=False)
    for extra in ([], ["--omit-import", "tmqtt_crypto"]):
        log = os.path.join(c.tmp, "broker-trace.log")
        with open(log, "w") as lf:
            proc = subprocess.Popen([c.broker, "--trace"] + opts + extra + ["--", "-c", conf],
                                    stdout=subprocess.DEVNULL, stderr=lf)
        up = wait_listening(port, proc)
        c.check(up, f"broker {' '.join(extra) or 'with tmqtt_crypto'} listening")
        used = []
        for cipher in (None, "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            try:
                name, ok = mqtt_over_tls(port, cipher)
            except OSError as e:
                name, ok = repr(e), False
            used.append(name)
            c.check(ok, f"{' '.join(extra) or 'host crypto'}: MQTT CONNACK over {name}")
        proc.terminate()
        proc.wait(timeout=20)
        trace = open(log).read()
        if not extra:
            for name in used:
                alg = HOST_ALG.get(name, "?")
                c.check(trace.count(f"aead_new({alg})") > SELFTEST_CONTEXTS,
                        f"{name}: records by the host's {alg}", trace[-1500:])
        else:
            c.check("tmqtt_crypto" not in trace, "omitted: the module never calls tmqtt_crypto", trace[-1500:])


def case_broker_event_loop(c):
    """The broker's loop uses the host's readiness sets when announced, poll() otherwise
    (a host like iwasm); both serve MQTT."""
    conf, port, opts = broker_setup(c, attest=False)
    for extra, want in (([], "event loop: host readiness set (tmqtt_event)"),
                        (["--omit-import", "tmqtt_event"], "event loop: poll"),
                        (["--omit-import", "all"], "event loop: poll")):
        proc = subprocess.Popen([c.broker] + opts + extra + ["--", "-c", conf], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        up = wait_listening(port, proc)
        ok = False
        if up:
            try:
                ok = mqtt_over_tls(port)[1]
            except OSError as e:
                ok = repr(e)
        proc.terminate()
        err = proc.communicate(timeout=20)[1]
        name = " ".join(extra) or "default"
        c.check(up and ok is True, f"{name}: MQTT CONNACK over TLS", f"{ok} {err[-800:]}")
        c.check(want in err, f"{name}: broker says '{want}'", err[-800:])


def mqtt_connect_pkt(cid):
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid.encode()
    return bytes([0x10, len(body)]) + body


def mqtt_publish_pkt(topic, payload):
    body = len(topic).to_bytes(2, "big") + topic.encode() + payload
    n, rl = len(body), b""
    while True:
        d, n = n % 128, n // 128
        rl += bytes([d | (0x80 if n else 0)])
        if not n:
            break
    return b"\x30" + rl + body


def read_packet(s):
    """One MQTT packet (type byte, body) from a blocking socket; None at EOF."""
    def exact(n):
        got = b""
        while len(got) < n:
            d = s.recv(n - len(got))
            if not d:
                return None
            got += d
        return got
    h = exact(1)
    if h is None:
        return None
    mult, n = 1, 0
    while True:
        b = exact(1)
        if b is None:
            return None
        n += (b[0] & 0x7F) * mult
        mult *= 128
        if not b[0] & 0x80:
            break
    body = exact(n)
    return None if body is None else (h[0], body)


def tls_client(port, cid, topic=None):
    """A TLS MQTT client on the broker: CONNECT (and SUBSCRIBE topic), acknowledged."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20))
    t.sendall(mqtt_connect_pkt(cid))
    assert read_packet(t) == (0x20, b"\x00\x00"), "CONNACK"
    if topic:
        t.sendall(b"\x82" + bytes([5 + len(topic)]) + b"\x00\x01" + len(topic).to_bytes(2, "big")
                  + topic.encode() + b"\x00")
        assert read_packet(t) == (0x90, b"\x00\x01\x00"), "SUBACK"
    return t


def rst_close(sock):
    """Close with a reset (RST), not a FIN."""
    import struct
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def client_hello():
    """The bytes of a real TLS ClientHello (Python's OpenSSL), without a connection."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def case_broker_tls_resets(c):
    """Issue 15: TLS clients that reset their connections mid-stream and mid-handshake, with
    the module on a host that leaves SIGPIPE at its default (--keep-sigpipe, as iwasm does):
    the broker writes to the reset connections (queued deliveries, the close notice) and
    lives on, and a healthy subscriber gets every message, the ones after the resets too."""
    import threading
    conf, port, opts = broker_setup(c, attest=False)
    proc = subprocess.Popen([c.broker, "--keep-sigpipe"] + opts + ["--", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        c.check(wait_listening(port, proc), "broker listening")
        good = tls_client(port, "good", "t")
        pub = tls_client(port, "pub")
        got = {"n": 0, "end": False}

        def reader():
            while True:
                pk = read_packet(good)
                if pk is None:
                    return
                if pk[0] >> 4 == 3:
                    got["n"] += 1
                    if pk[1].endswith(b"END"):
                        got["end"] = True
                        return
        rt = threading.Thread(target=reader, daemon=True)
        rt.start()
        payload = b"x" * 1024
        sent = 0
        for round_ in range(3):
            # mid-stream: subscribers that stop reading while deliveries queue up, then reset
            bad = [tls_client(port, f"bad{round_}-{i}", "t") for i in range(3)]
            for _ in range(400):
                pub.sendall(mqtt_publish_pkt("t", payload))
                sent += 1
            for b in bad:
                rst_close(b)
            # mid-handshake: a reset after part of a ClientHello, after all of it, and after
            # reading the start of the server's answer
            ch = client_hello()
            for cut in (len(ch) // 2, len(ch), -1):
                s = socket.create_connection(("127.0.0.1", port), timeout=20)
                s.sendall(ch if cut == -1 else ch[:cut])
                if cut == -1:
                    s.recv(5)
                rst_close(s)
            for _ in range(200):   # the broker writes on while it reaps the resets
                pub.sendall(mqtt_publish_pkt("t", payload))
                sent += 1
        pub.sendall(mqtt_publish_pkt("t", b"END"))
        sent += 1
        rt.join(60)
        c.check(proc.poll() is None, "the broker lives on (no SIGPIPE)",
                f"rc={proc.returncode} {proc.stderr.read()[-1500:] if proc.poll() is not None else ''}")
        c.check(got["end"] and got["n"] == sent, f"the healthy subscriber got all {sent} messages",
                f"got {got['n']} end={got['end']}")
        try:
            tls_client(port, "late").close()   # raises unless the CONNACK comes
            late_ok = True
        except (OSError, AssertionError) as e:
            late_ok = repr(e)
        c.check(late_ok is True, "a new TLS client connects after the resets", str(late_ok))
        good.close()
        pub.close()
    finally:
        proc.terminate()
        err = proc.communicate(timeout=20)[1]
    lines = err.splitlines()
    for r in range(3):
        for i in range(3):
            c.check(any(f"'bad{r}-{i}'" in l and "closed: TLS" in l and ("reset by peer" in l or "Broken pipe" in l)
                        for l in lines),
                    f"bad{r}-{i}: the broker logged its reset mid-stream", err[-1500:])
    c.check(sum("TLS handshake: Connection reset by peer" in l for l in lines) == 9,
            "all 9 resets mid-handshake logged as such", err[-1500:])


def case_broker_bulk_memory(c):
    bulk_functions(c, c.broker_module, "tmqtt-broker.wasm")


CASES = {
    "args": case_args, "env": case_env, "clock": case_clock, "random": case_random,
    "exit-code": case_exit_code, "return-code": case_return_code, "proc-exit-zero": case_proc_exit_zero,
    "fdstat": case_fdstat, "files": case_files, "confine": case_confine, "poll": case_poll,
    "trap-unreachable": trap_case("unreachable", "unreachable executed", "cmd_trap"),
    "trap-div0": trap_case("div0", "integer divide by zero", "cmd_trap"),
    "trap-oob": trap_case("oob", "out of bounds memory", "cmd_trap"),
    "trap-stack": trap_case("stack", "call stack exhausted", "recurse"),
    "trap-indirect": trap_case("indirect", "indirect call", "cmd_trap"),
    "trap-null": trap_case("null", "indirect call", "cmd_trap"),
    "max-memory": case_max_memory, "max-memory-too-small": case_max_memory_too_small,
    "module-check": case_module_check, "bad-options": case_bad_options,
    "ra-none": case_ra_none, "ra-sim": case_ra_sim,
    "ra-gramine-fake": case_ra_gramine_fake, "ra-tsm-fake": case_ra_tsm_fake,
    "sock-echo-v4": echo_case("127.0.0.1", socket.AF_INET), "sock-echo-v6": echo_case("::1", socket.AF_INET6),
    "sock-pool-refuses-bind": case_sock_pool_refuses_bind, "sock-no-pool-refuses": case_sock_no_pool_refuses,
    "sock-connect": case_sock_connect, "sock-connect-refused": case_sock_connect_refused,
    "resolve": case_resolve, "hello": case_hello, "startup": case_startup, "tls13": case_tls13,
    "imports": case_imports, "omit-import-traps": case_omit_import_traps, "ra-require": case_ra_require,
    "crypto-hostile": case_crypto_hostile, "crypto-limit": case_crypto_limit, "event": case_event,
    "broker-event-loop": case_broker_event_loop, "broker-tls-resets": case_broker_tls_resets,
    "sigpipe-write": sigpipe_case("write"), "sigpipe-send": sigpipe_case("send"),
    "keep-sigpipe": case_keep_sigpipe, "memops": case_memops, "bulk-memory": case_bulk_memory,
    "broker-without-ra": case_broker_without_ra, "broker-host-crypto": case_broker_host_crypto,
    "broker-bulk-memory": case_broker_bulk_memory,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", required=True)
    ap.add_argument("--hello")
    ap.add_argument("--module")
    ap.add_argument("--testdata", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "testdata"))
    ap.add_argument("--host-rt", help="tmqtt-wasm-thost (t_host.wasm translated)")
    ap.add_argument("--host-module", help="t_host.wasm")
    ap.add_argument("--broker", help="tmqtt-wasm with tmqtt-broker.wasm")
    ap.add_argument("--broker-module", help="tmqtt-broker.wasm")
    ap.add_argument("cases", nargs="+")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tmqtt-wasm-test-")
    c = Ctx(args, tmp)
    try:
        for name in args.cases:
            print(f"== {name}")
            CASES[name](c)
    except Exception as e:  # a crash of the driver is a failure, not an error to hide
        c.check(False, "driver exception", repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
