"""A local HTTPS server that plays a PCCS / Intel PCS (API v4) with the shared test
collateral, for test_collateral_fetch.py; and the re-shaping of that collateral into
PCS responses, which tests/fuzz/corpus/make_collateral_seeds.py reuses for seeds.

Run as a program (the test starts it as a subprocess and stops it by PID):

    python3 pcs_server.py --cert server.pem --key server.key --sgx SGX.json --tdx TDX.json
                          [--mode MODE] [--log FILE]

It binds 127.0.0.1 on a free port and prints "ready PORT" once it accepts
connections. Paths served (as a PCCS does):

    /{sgx,tdx}/certification/v4/tcb?fmspc=F   {"tcbInfo":...,"signature":...}   TCB-Info-Issuer-Chain
    /{sgx,tdx}/certification/v4/qe/identity   {"enclaveIdentity":...,...}       SGX-Enclave-Identity-Issuer-Chain
    /sgx/certification/v4/pckcrl?ca=C&encoding=der|pem                          SGX-PCK-CRL-Issuer-Chain
    /sgx/certification/v4/rootcacrl           hex of the DER (as PCCS sends it)
    /IntelSGXRootCA.der                       DER (as Intel's certificate site sends it)

Anything else, an FMSPC or CA the data does not have: 404. MODE changes the TCB info
responses only: tamper (one byte of tcbInfo changed), notfound (404), garbage (200,
not JSON), truncate (Content-Length larger than the body, then the connection closes),
nochain (no issuer-chain header), twochains (the header twice), badchain (issuer chain
from another CA: --badchain PEM).
"""

import argparse
import json
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The PCK CA that issued each data set's PCK CRL (its quote's PCK certificate).
CA_OF = {"sgx": "processor", "tdx": "platform"}


def quote_header(pem):
    """URL-encode an issuer chain as PCS does for its headers."""
    return urllib.parse.quote(pem, safe="")


def tcb_body(c):
    return ('{"tcbInfo":%s,"signature":"%s"}' % (c["tcb_info"], c["tcb_info_signature"])).encode()


def qe_body(c):
    return ('{"enclaveIdentity":%s,"signature":"%s"}'
            % (c["qe_identity"], c["qe_identity_signature"])).encode()


def pem_crl(der):
    import base64
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return ("-----BEGIN X509 CRL-----\n" + "\n".join(lines) + "\n-----END X509 CRL-----\n").encode()


def fmspc_of(c):
    return json.loads(c["tcb_info"])["fmspc"].lower()


class Handler(BaseHTTPRequestHandler):
    server_version = "pcs-test"

    def log_message(self, fmt, *args):
        if self.server.logf:
            self.server.logf.write("%s\n" % (fmt % args))
            self.server.logf.flush()

    def reply(self, status, body, headers=(), length=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        data = self.server.data
        parts = u.path.strip("/").split("/")
        if u.path == "/IntelSGXRootCA.der":
            return self.reply(200, bytes.fromhex(data["sgx"]["root_ca_crl"]))
        if len(parts) < 4 or parts[0] not in data or parts[1:3] != ["certification", "v4"]:
            return self.reply(404, b"not found")
        tee, rest = parts[0], "/".join(parts[3:])
        c = data[tee]
        if rest == "tcb":
            if q.get("fmspc", "").lower() != fmspc_of(c):
                return self.reply(404, b"no TCB info for this FMSPC")
            return self.tcb(c)
        if rest == "qe/identity":
            return self.reply(200, qe_body(c), [("SGX-Enclave-Identity-Issuer-Chain",
                                                 quote_header(c["qe_identity_issuer_chain"]))])
        if tee == "sgx" and rest == "pckcrl":
            src = [d for t, d in data.items() if CA_OF[t] == q.get("ca")]
            if not src:
                return self.reply(404, b"unknown ca")
            der = bytes.fromhex(src[0]["pck_crl"])
            body = pem_crl(der) if q.get("encoding", "pem") == "pem" else der
            return self.reply(200, body, [("SGX-PCK-CRL-Issuer-Chain",
                                           quote_header(src[0]["pck_crl_issuer_chain"]))])
        if tee == "sgx" and rest == "rootcacrl":
            return self.reply(200, c["root_ca_crl"].encode())
        return self.reply(404, b"not found")

    def tcb(self, c):
        mode = self.server.mode
        body = tcb_body(c)
        chain = [("TCB-Info-Issuer-Chain", quote_header(c["tcb_info_issuer_chain"]))]
        if mode == "tamper":
            assert b'"tcbType":0' in body
            return self.reply(200, body.replace(b'"tcbType":0', b'"tcbType":1', 1), chain)
        if mode == "notfound":
            return self.reply(404, b"no TCB info for this FMSPC")
        if mode == "garbage":
            return self.reply(200, b"<html>Service unavailable</html>", chain)
        if mode == "truncate":
            self.reply(200, body[: len(body) // 2], chain, length=len(body))
            self.close_connection = True
            return None
        if mode == "nochain":
            return self.reply(200, body)
        if mode == "twochains":
            return self.reply(200, body, chain + chain)
        if mode == "badchain":
            return self.reply(200, body, [("TCB-Info-Issuer-Chain", quote_header(self.server.badchain))])
        return self.reply(200, body, chain)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--sgx", required=True)
    ap.add_argument("--tdx", required=True)
    ap.add_argument("--mode", default="normal",
                    choices=["normal", "tamper", "notfound", "garbage", "truncate", "nochain",
                             "twochains", "badchain"])
    ap.add_argument("--badchain")
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(a.sgx) as f:
        sgx = json.load(f)
    with open(a.tdx) as f:
        tdx = json.load(f)
    srv.data = {"sgx": sgx, "tdx": tdx}
    srv.mode = a.mode
    srv.badchain = open(a.badchain).read() if a.badchain else None
    srv.logf = open(a.log, "a") if a.log else None
    print("ready %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
