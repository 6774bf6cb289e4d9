"""Writes the seed corpus of fuzz_collateral (tests/fuzz/corpus/collateral/) from the
shared test collateral, in the shapes a PCS / PCCS sends (the same re-shaping as the
integration test's server, tests/integration/pcs_server.py):

    python3 tests/fuzz/make_collateral_seeds.py

Each file is one thing the fetch side parses: a TCB info or QE identity body, an
issuer-chain header line (URL-encoded PEM), a PCK CRL as DER and PEM, a root CA CRL
as hex, a cache file. The fuzz target runs every parser on every input.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import pcs_server  # noqa: E402

TESTDATA = os.path.join(ROOT, "..", "shared", "testdata")
OUT = os.path.join(HERE, "corpus", "collateral")


def main():
    os.makedirs(OUT, exist_ok=True)
    for tee in ("sgx", "tdx"):
        with open(os.path.join(TESTDATA, tee, "collateral.json")) as f:
            c = json.load(f)
        der = bytes.fromhex(c["pck_crl"])
        seeds = {
            "tcb-body": pcs_server.tcb_body(c),
            "qe-body": pcs_server.qe_body(c),
            "tcb-chain-header": ("TCB-Info-Issuer-Chain: %s\r\n"
                                 % pcs_server.quote_header(c["tcb_info_issuer_chain"])).encode(),
            "crl-chain-header": pcs_server.quote_header(c["pck_crl_issuer_chain"]).encode(),
            "pck-crl-der": der,
            "pck-crl-pem": pcs_server.pem_crl(der),
            "root-crl-hex": c["root_ca_crl"].encode(),
            "cache-file": json.dumps(c, indent=2).encode(),
        }
        for name, body in seeds.items():
            with open(os.path.join(OUT, "%s-%s" % (tee, name)), "wb") as f:
                f.write(body)


if __name__ == "__main__":
    main()
