#!/bin/sh
# test_attest_tool.sh — runs tmqtt-attest on the real test data and checks
# exit codes and output: the expected appraisals of shared/testdata/README.md
# and shared/testdata/snp/README.md, the fail-closed defaults (no collateral,
# no pin), sim evidence made by the tool itself, usage errors.
# usage: test_attest_tool.sh path/to/tmqtt-attest path/to/shared/testdata
set -u
TOOL=$1
T=$2
W=$(mktemp -d /tmp/tm-attest-tool-XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0; passes=0
AT=2025-06-20T00:00:00Z

# expect CODE PATTERN -- command...
expect() {
    code=$1; pat=$2; shift 3
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -ne "$code" ]; then
        echo "FAIL (exit $rc, want $code): $*"; echo "$out" | tail -3; fails=$((fails+1)); return
    fi
    if ! printf '%s\n' "$out" | grep -q -- "$pat"; then
        echo "FAIL (output lacks '$pat'): $*"; echo "$out" | tail -3; fails=$((fails+1)); return
    fi
    passes=$((passes+1))
}

SIGNER=815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6
MRTD=91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7
SNPM=7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f
printf 'mrsigner %s\ntcb_status UpToDate\ntcb_status ConfigurationAndSWHardeningNeeded\n' $SIGNER > "$W/sgx.policy"
printf 'mrsigner %s\n' $SIGNER > "$W/sgx-uptodate.policy"
printf 'mrtd %s\n' $MRTD > "$W/tdx.policy"
printf 'snp_measurement %s\n' $SNPM > "$W/snp.policy"

expect 0 'tcb_status: ConfigurationAndSWHardeningNeeded' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" \
    --policy "$W/sgx.policy" --at $AT
expect 0 'ppid: d04ec06d4e6d92dc90d0ad3cf5ee2ddf' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" \
    --policy "$W/sgx.policy" --at $AT
expect 1 'TCB status ConfigurationAndSWHardeningNeeded not accepted by policy' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" \
    --policy "$W/sgx-uptodate.policy" --at $AT
expect 0 '"tcb_status":"UpToDate"' -- \
    "$TOOL" verify --format tdx-dcap --evidence "$T/tdx/quote.bin" --collateral "$T/tdx/collateral.json" --at $AT \
    --policy "$W/tdx.policy" --json
expect 0 '"verdict":"pass"' -- \
    "$TOOL" verify --format auto --evidence "$T/tdx/quote.bin" --collateral "$T/tdx/collateral.json" --at $AT \
    --policy "$W/tdx.policy" --json
expect 0 'td_attributes: 0x0000000010000000' -- \
    "$TOOL" verify --evidence "$T/tdx/quote.bin" --collateral "$T/tdx/collateral.json" --at $AT --policy "$W/tdx.policy"
expect 1 'TCB info expired (nextUpdate 2025-07-19' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" \
    --policy "$W/sgx.policy"
# fail closed: without a policy, the verdict names what is missing
expect 1 'no collateral for FMSPC 00a067110000 (the policy names no collateral)' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin"
expect 1 'policy: no measurement pinned for tdx-dcap evidence (pin one of: mrtd' -- \
    "$TOOL" verify --evidence "$T/tdx/quote.bin" --collateral "$T/tdx/collateral.json" --at $AT
printf 'mrsigner %s\nallow_missing_collateral true\n' $SIGNER > "$W/nocoll.policy"
expect 0 'verdict: PASS: ok, WARNING: no collateral' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --policy "$W/nocoll.policy"
expect 0 'warning: allow_missing_collateral true' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --policy "$W/nocoll.policy"
expect 0 'tcb_status: not evaluated' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --policy "$W/nocoll.policy"
# collateral from a cache directory, by FMSPC
mkdir "$W/cache"
cp "$T/sgx/collateral.json" "$W/cache/sgx-00a067110000.json"
expect 0 'verdict: PASS' -- \
    "$TOOL" verify --evidence "$T/sgx/quote.bin" --collateral-dir "$W/cache" --policy "$W/sgx.policy" --at $AT
expect 1 'no collateral for FMSPC b0c06f000000 (the policy.s collateral does not cover it)' -- \
    "$TOOL" verify --evidence "$T/tdx/quote.bin" --collateral-dir "$W/cache" --policy "$W/tdx.policy" --at $AT

# SEV-SNP (shared/testdata/snp/README.md)
expect 0 'verdict: PASS' -- \
    "$TOOL" verify --evidence "$T/snp/report_milan.bin" --vcek "$T/snp/vcek_milan.der" --policy "$W/snp.policy" --at $AT
expect 0 'reported_tcb: 0x7308000000000003 (bootloader=3,tee=0,snp=8,microcode=115)' -- \
    "$TOOL" verify --format sev-snp --evidence "$T/snp/report_milan.bin" --vcek "$T/snp/vcek_milan.der" \
    --policy "$W/snp.policy"
expect 0 '"snp_product":"Milan"' -- \
    "$TOOL" verify --evidence "$T/snp/report_milan.bin" --vcek "$T/snp/vcek_milan.der" --policy "$W/snp.policy" --json
expect 1 'no VCEK for CHIP_ID d49554ec717f4e5b' -- \
    "$TOOL" verify --evidence "$T/snp/report_milan.bin" --policy "$W/snp.policy"
expect 1 'policy: no measurement pinned for sev-snp evidence' -- \
    "$TOOL" verify --evidence "$T/snp/report_milan.bin" --vcek "$T/snp/vcek_milan.der"
expect 1 "VCEK 'SEV-VCEK' is not valid at 2031-01-01" -- \
    "$TOOL" verify --evidence "$T/snp/report_milan.bin" --vcek "$T/snp/vcek_milan.der" --policy "$W/snp.policy" \
    --at 2031-01-01T00:00:00Z
expect 1 'not an X.509 certificate' -- \
    "$TOOL" verify --evidence "$T/snp/report_milan.bin" --vcek "$T/snp/report_milan.bin"
expect 0 'measurement: 7a1e5c26' -- "$TOOL" show --evidence "$T/snp/report_milan.bin"
expect 1 'is not valid at 2031-01-01' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --at 2031-01-01T00:00:00Z
expect 1 'report_data does not match the session binding' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --report-data \
    00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
expect 0 'pck_fmspc: 00a067110000' -- "$TOOL" show --evidence "$T/sgx/quote.bin"
expect 0 'mrtd: 91eb2b44' -- "$TOOL" show --format tdx-dcap --evidence "$T/tdx/quote.bin"

# sim evidence made by the tool
RD=$(printf 'ab%.0s' $(seq 64))
M=$(printf '42%.0s' $(seq 32))
expect 0 'spki_sha256: ' -- "$TOOL" sim-keygen --key "$W/plat.pem"
KH=$("$TOOL" sim-keygen --key "$W/plat.pem" | sed -n 's/^spki_sha256: //p')
expect 0 '' -- "$TOOL" sim-quote --key "$W/plat.pem" --report-data "$RD" --measurement "$M" -o "$W/ev.sim"
expect 1 'sim is not a real TEE' -- "$TOOL" verify --format sim --evidence "$W/ev.sim" --report-data "$RD"
printf 'sim_trusted_key %s\nsim_measurement %s\n' "$KH" "$M" > "$W/sim.policy"
expect 0 'verdict: PASS' -- "$TOOL" verify --format auto --evidence "$W/ev.sim" --report-data "$RD" --policy "$W/sim.policy"
printf 'sim_trusted_key plat.pem\n' > "$W/sim2.policy"
expect 1 'no measurement pinned for sim evidence' -- "$TOOL" verify --evidence "$W/ev.sim" --policy "$W/sim2.policy"
printf 'sim_trusted_key plat.pem\nallow_any_measurement true\n' > "$W/sim3.policy"
expect 0 '"any_measurement_allowed":true' -- "$TOOL" verify --evidence "$W/ev.sim" --policy "$W/sim3.policy" --json
expect 0 'measurement: 4242' -- "$TOOL" show --evidence "$W/ev.sim"

# usage and input errors
expect 2 'usage' -- "$TOOL"
expect 2 'unknown command' -- "$TOOL" frobnicate
expect 2 'verify needs --evidence' -- "$TOOL" verify
expect 2 '--at wants' -- "$TOOL" verify --evidence "$T/sgx/quote.bin" --at yesterday
expect 2 'unknown format' -- "$TOOL" verify --format nope --evidence "$T/sgx/quote.bin"
expect 1 'cannot read' -- "$TOOL" verify --evidence "$W/missing.bin"
printf 'colour blue\n' > "$W/bad.policy"
expect 1 'bad.policy:1: unknown key' -- "$TOOL" verify --evidence "$T/sgx/quote.bin" --policy "$W/bad.policy"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
