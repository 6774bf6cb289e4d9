"""`tmqtt-attest collateral fetch` against a local HTTPS PCCS (pcs_server.py).

The server runs as its own process on 127.0.0.1 with a throwaway CA and serves the
shared test collateral (shared/testdata/{sgx,tdx}/collateral.json) re-shaped into
Intel PCS API v4 responses. The tool reads the FMSPC and PCK CA from the real quotes,
fetches, checks and writes the cache; the tests compare the cache files with the
test data field by field and check every refusal (untrusted server, tampered or
stale documents, rollback, HTTP failures, timeout) leaves the cache untouched.

The test collateral was current on 2025-06-20, so fetches pass --at with that time
(one test shows that "now" refuses it as expired). No broker is involved.
"""

import json
import os
import selectors
import socket
import subprocess
import sys
import time

import pytest

from atls_support import Pki, run

pytestmark = pytest.mark.tmqtt_only

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.abspath(os.path.join(HERE, "..", "..", "..", "shared", "testdata"))
AT = "2025-06-20T00:00:00Z"
FIELDS = ("tcb_info", "tcb_info_signature", "tcb_info_issuer_chain", "qe_identity",
          "qe_identity_signature", "qe_identity_issuer_chain", "pck_crl", "root_ca_crl",
          "pck_crl_issuer_chain")
CASES = {  # tee: (cache file name, PCK CA)
    "sgx": ("sgx-00a067110000.json", "processor"),
    "tdx": ("tdx-b0c06f000000.json", "platform"),
}


def data(tee, name):
    return os.path.join(TESTDATA, tee, name)


def collateral(tee):
    with open(data(tee, "collateral.json")) as f:
        return json.load(f)


class PcsServer:
    """pcs_server.py as a subprocess; ready when it printed its port."""

    def __init__(self, pki, workdir, mode="normal", badchain=None, timeout=10.0):
        self.log = os.path.join(workdir, "pcs-%s.log" % mode)
        cmd = [sys.executable, os.path.join(HERE, "pcs_server.py"), "--cert", pki.cert,
               "--key", pki.key, "--sgx", data("sgx", "collateral.json"),
               "--tdx", data("tdx", "collateral.json"), "--mode", mode, "--log", self.log]
        if badchain:
            cmd += ["--badchain", badchain]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                self.stop()
                raise AssertionError("PCS test server did not get ready")
            chunk = os.read(self.proc.stdout.fileno(), 64)
            if not chunk:
                err = self.proc.stderr.read().decode("utf-8", "replace")
                self.stop()
                raise AssertionError("PCS test server exited: " + err)
            line += chunk
        sel.close()
        word, port = line.decode().split()
        assert word == "ready"
        self.port = int(port)
        self.url = "https://127.0.0.1:%d" % self.port

    def requests(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pcs-pki"))


@pytest.fixture
def pcs(pki, tmp_path):
    """Factory: pcs(mode=..., badchain=...) -> running PcsServer, stopped at teardown."""
    started = []

    def make(mode="normal", badchain=None):
        s = PcsServer(pki, str(tmp_path), mode, badchain)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def attest(build_dir):
    exe = os.path.join(build_dir, "bin", "tmqtt-attest")
    if not os.path.exists(exe):
        pytest.fail("tmqtt-attest not built: %s" % exe, pytrace=False)
    return exe


def fetch(attest, url, cache, *extra, cafile=None, at=AT, timeout=30):
    cmd = [attest, "collateral", "fetch", "--url", url, "--cache", str(cache)]
    if cafile:
        cmd += ["--cafile", cafile]
    if at:
        cmd += ["--at", at]
    return run(cmd + list(extra), timeout=timeout)


def snapshot(d):
    """Names, bytes and inode numbers of the files in d (the cache, compared around refusals).
    Temporary files would show here; the lock file is the one file a refusal may create."""
    out = {}
    if os.path.isdir(d):
        for n in sorted(os.listdir(d)):
            if n == ".tmqtt-collateral.lock":
                continue
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[n] = (f.read(), os.stat(p).st_ino)
    return out


def seed_cache(cache, tee, change=None):
    """A cache file made from the test data, optionally with fields edited."""
    c = collateral(tee)
    if change:
        change(c)
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, CASES[tee][0])
    with open(path, "w") as f:
        json.dump(c, f, indent=2)
    return path


def refused(attest, pki, srv, cache, change=None):
    """Fetch the SGX collateral over a cache seeded from the test data (edited by
    `change`); the fetch must fail and leave the cache as it was. Returns stderr."""
    seed_cache(cache, "sgx", change)
    before = snapshot(cache)
    rc, out, err = fetch(attest, srv.url, cache, "--quote", data("sgx", "quote.bin"),
                         cafile=pki.ca)
    assert rc == 1, out + err
    assert snapshot(cache) == before
    return err


@pytest.mark.parametrize("tee", ["sgx", "tdx"])
def test_fetch_from_quote_writes_the_test_collateral(pcs, pki, attest, tmp_path, tee):
    srv = pcs()
    cache = tmp_path / "cache"
    rc, out, err = fetch(attest, srv.url, cache, "--quote", data(tee, "quote.bin"), cafile=pki.ca)
    assert rc == 0, err
    name, ca = CASES[tee]
    assert out.startswith("updated %s/%s" % (cache, name)), out
    assert "PCK CA %s" % ca in out
    # The FMSPC came from the quote's PCK certificate (the server answers 404 otherwise).
    assert "fmspc=%s" % name[4:16].upper() in srv.requests()
    with open(cache / name) as f:
        got = json.load(f)
    want = collateral(tee)
    assert sorted(got) == sorted(FIELDS)
    for k in FIELDS:
        assert got[k] == want[k], "field %s differs" % k
    # The verifier reads the cache file as collateral and evaluates the TCB with it.
    rc, out, err = run([attest, "verify", "--format", tee + "-dcap", "--evidence",
                        data(tee, "quote.bin"), "--collateral", str(cache / name), "--at", AT,
                        "--json"])
    claims = json.loads(out)["claims"]
    assert claims["tcb_evaluated"] is True, out
    assert claims["tcb_status"] == ("UpToDate" if tee == "tdx"
                                    else "ConfigurationAndSWHardeningNeeded"), out


def test_fetch_again_leaves_the_file_alone(pcs, pki, attest, tmp_path):
    srv = pcs()
    cache = tmp_path / "cache"
    q = data("sgx", "quote.bin")
    assert fetch(attest, srv.url, cache, "--quote", q, cafile=pki.ca)[0] == 0
    before = snapshot(cache)
    rc, out, err = fetch(attest, srv.url, cache, "--quote", q, cafile=pki.ca)
    assert rc == 0, err
    assert out.startswith("unchanged "), out
    assert snapshot(cache) == before


def test_fetch_by_fmspc_and_root_crl_url(pcs, pki, attest, tmp_path):
    srv = pcs()
    cache = tmp_path / "cache"
    rc, out, err = fetch(attest, srv.url + "/", cache, "--fmspc", "00A067110000", "--format",
                         "sgx-dcap", "--ca", "processor", "--root-crl-url",
                         srv.url + "/IntelSGXRootCA.der", cafile=pki.ca)
    assert rc == 0, err
    with open(cache / "sgx-00a067110000.json") as f:
        got = json.load(f)
    want = collateral("sgx")
    assert {k: got[k] for k in FIELDS} == {k: want[k] for k in FIELDS}
    assert "GET /IntelSGXRootCA.der" in srv.requests()
    assert "rootcacrl" not in srv.requests()


def test_wrong_pck_ca_is_refused(pcs, pki, attest, tmp_path):
    srv = pcs()
    cache = tmp_path / "cache"
    # The test server hands out the Platform CA's CRL for ca=platform: not the SGX quote's CA.
    rc, out, err = fetch(attest, srv.url, cache, "--quote", data("sgx", "quote.bin"), "--ca",
                         "platform", cafile=pki.ca)
    assert rc == 2 and "does not match the quote's PCK CA" in err
    rc, out, err = fetch(attest, srv.url, cache, "--fmspc", "00a067110000", "--format", "sgx-dcap",
                         cafile=pki.ca)
    assert rc == 2 and "--ca" in err
    assert snapshot(cache) == {}


def test_collateral_valid_then_is_expired_now(pcs, pki, attest, tmp_path):
    srv = pcs()
    cache = tmp_path / "cache"
    rc, out, err = fetch(attest, srv.url, cache, "--quote", data("sgx", "quote.bin"),
                         cafile=pki.ca, at=None)
    assert rc == 1
    assert "TCB info: expired (nextUpdate 2025-07-19T10:56:11Z)" in err, err
    assert snapshot(cache) == {}


def test_server_certificate_must_verify(pcs, pki, attest, tmp_path):
    srv = pcs()
    (tmp_path / "other-ca").mkdir()
    other = Pki(tmp_path / "other-ca")
    cache = tmp_path / "cache"
    q = data("sgx", "quote.bin")
    rc, out, err = fetch(attest, srv.url, cache, "--quote", q, cafile=other.ca)
    assert rc == 1
    assert "SSL certificate problem" in err, err
    # Without --cafile the system CAs apply, and they do not know the test CA either.
    rc, out, err = fetch(attest, srv.url, cache, "--quote", q)
    assert rc == 1
    assert "SSL certificate problem" in err, err
    # By name: the certificate is for localhost and 127.0.0.1, and is checked for it.
    rc, out, err = fetch(attest, "https://localhost:%d" % srv.port, cache, "--quote", q,
                         cafile=pki.ca)
    assert rc == 0, err
    assert snapshot(cache)


def test_plain_http_is_refused(attest, tmp_path):
    rc, out, err = fetch(attest, "http://127.0.0.1:9", tmp_path / "cache", "--quote",
                         data("sgx", "quote.bin"))
    assert rc == 1
    assert "https://" in err
    assert not os.path.exists(tmp_path / "cache")


def test_tampered_tcb_info_is_refused(pcs, pki, attest, tmp_path):
    err = refused(attest, pki, pcs("tamper"), tmp_path / "cache")
    assert "TCB info: signature does not verify" in err, err


def test_issuer_chain_must_end_in_the_intel_root(pcs, pki, attest, tmp_path):
    chain = tmp_path / "chain.pem"
    with open(pki.cert) as a, open(pki.ca) as b, open(chain, "w") as out:
        out.write(a.read() + b.read())
    err = refused(attest, pki, pcs("badchain", badchain=str(chain)), tmp_path / "cache")
    assert "is not the pinned Intel SGX Root CA" in err, err


def newer(field, when):
    def change(c):
        doc = json.loads(c[field])
        c[field] = c[field].replace(doc["issueDate"], when)
    return change


@pytest.mark.parametrize("field,what", [("tcb_info", "TCB info"),
                                        ("qe_identity", "QE identity")])
def test_older_issue_date_than_cached_is_refused(pcs, pki, attest, tmp_path, field, what):
    err = refused(attest, pki, pcs(), tmp_path / "cache", newer(field, "2025-06-19T23:00:00Z"))
    assert "rollback refused: fetched %s has issueDate" % what in err, err
    assert "older than the cached one (2025-06-19T23:00:00Z)" in err, err


def test_older_cached_file_is_replaced(pcs, pki, attest, tmp_path):
    srv = pcs()
    cache = tmp_path / "cache"
    seed_cache(cache, "tdx", newer("tcb_info", "2025-06-01T00:00:00Z"))
    rc, out, err = fetch(attest, srv.url, cache, "--quote", data("tdx", "quote.bin"),
                         cafile=pki.ca)
    assert rc == 0, err
    assert out.startswith("updated "), out
    with open(cache / CASES["tdx"][0]) as f:
        assert json.load(f)["tcb_info"] == collateral("tdx")["tcb_info"]


def test_unreadable_cached_file_is_replaced_with_a_warning(pcs, pki, attest, tmp_path):
    srv = pcs()
    cache = tmp_path / "cache"
    os.makedirs(cache)
    with open(cache / CASES["sgx"][0], "w") as f:
        f.write("not collateral")
    rc, out, err = fetch(attest, srv.url, cache, "--quote", data("sgx", "quote.bin"),
                         cafile=pki.ca)
    assert rc == 0, err
    assert "warning: the cached %s/%s was unreadable (not JSON" % (cache, CASES["sgx"][0]) in err
    with open(cache / CASES["sgx"][0]) as f:
        assert json.load(f)["tcb_info"] == collateral("sgx")["tcb_info"]


@pytest.mark.parametrize("mode,message", [
    ("notfound", "HTTP status 404: no TCB info for this FMSPC"),
    ("garbage", "TCB info response: not JSON"),
    ("truncate", "transfer closed with"),
    ("nochain", "response has no TCB-Info-Issuer-Chain header"),
    ("twochains", "TCB-Info-Issuer-Chain header repeated"),
])
def test_bad_responses_are_refused(pcs, pki, attest, tmp_path, mode, message):
    srv = pcs(mode)
    err = refused(attest, pki, srv, tmp_path / "cache")
    assert "fetch failed: GET %s/sgx/certification/v4/tcb?fmspc=00A067110000" % srv.url in err, err
    assert message in err, err


def test_timeout(attest, pki, tmp_path):
    # A listener that never answers: the TCP connection is made (backlog) and then
    # the TLS handshake waits for a ServerHello that never comes.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = "https://127.0.0.1:%d" % s.getsockname()[1]
        t0 = time.monotonic()
        rc, out, err = fetch(attest, url, tmp_path / "cache", "--quote", data("sgx", "quote.bin"),
                             "--timeout", "1", cafile=pki.ca, timeout=20)
        took = time.monotonic() - t0
    assert rc == 1
    assert "timed out" in err.lower(), err
    assert took < 10
    assert snapshot(tmp_path / "cache") == {}
