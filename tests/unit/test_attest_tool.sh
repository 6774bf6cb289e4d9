#!/bin/sh
# test_attest_tool.sh — runs tmqtt-attest on the real test data and checks
# exit codes and output: the expected appraisals of shared/testdata/README.md,
# sim evidence made by the tool itself, usage errors.
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

printf 'tcb_status UpToDate\ntcb_status ConfigurationAndSWHardeningNeeded\n' > "$W/sgx.policy"

expect 0 'tcb_status: ConfigurationAndSWHardeningNeeded' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" \
    --policy "$W/sgx.policy" --at $AT
expect 1 'not accepted by policy' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" --at $AT
expect 0 '"tcb_status":"UpToDate"' -- \
    "$TOOL" verify --format tdx-dcap --evidence "$T/tdx/quote.bin" --collateral "$T/tdx/collateral.json" --at $AT --json
expect 0 '"verdict":"pass"' -- \
    "$TOOL" verify --format auto --evidence "$T/tdx/quote.bin" --collateral "$T/tdx/collateral.json" --at $AT --json
expect 1 'TCB info expired (nextUpdate 2025-07-19' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin" --collateral "$T/sgx/collateral.json" \
    --policy "$W/sgx.policy"
expect 0 'tcb_status: not evaluated' -- \
    "$TOOL" verify --format sgx-dcap --evidence "$T/sgx/quote.bin"
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
expect 0 '"verdict":"pass"' -- "$TOOL" verify --evidence "$W/ev.sim" --policy "$W/sim2.policy" --json
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
