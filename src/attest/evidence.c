/*
 * evidence.c — format registry, the session binding, claims printers and the
 * tm_verify() dispatcher.
 *
 * tm_verify() owns the checks common to every format (policy accepts the
 * format, arguments sane, claims reset) and hands the bytes to the verifier
 * of that format (sim.c, dcap.c, snp.c). Each verifier compares the binding
 * in constant time right after locating report_data, before it looks at
 * signatures or certificates.
 */
#include "attest/attest_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

static const struct { uint16_t id; const char *name; } formats[] = {
    {TM_FMT_SIM, "sim"},
    {TM_FMT_SGX_DCAP, "sgx-dcap"},
    {TM_FMT_TDX_DCAP, "tdx-dcap"},
    {TM_FMT_SEV_SNP, "sev-snp"},
};

const char *tm_format_name(uint16_t format)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].id == format) return formats[i].name;
    return NULL;
}

int tm_format_from_name(const char *name, uint16_t *format)
{
    for (size_t i = 0; name && i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, name) == 0) {
            *format = formats[i].id;
            return 0;
        }
    return -1;
}

int tm_atls_binding(tm_atls_role role, const uint8_t nonce[TM_ATLS_NONCE_LEN],
                    const uint8_t *binder, size_t binder_len,
                    const uint8_t *key_share, size_t key_share_len,
                    const uint8_t *spki_hash, uint8_t out[TM_REPORT_DATA_LEN])
{
    static const uint8_t zero[32];
    const char *label = role == TM_ATLS_CLIENT ? TM_ATLS_LABEL_CLIENT : TM_ATLS_LABEL_SERVER;
    const uint8_t sep = 0x00;
    unsigned int outlen = 0;
    if (!nonce || !key_share || key_share_len == 0 || !out) return -1;
    if (!binder || binder_len < TM_ATLS_BINDER_MIN || binder_len > TM_ATLS_BINDER_MAX) return -1;
    if (role != TM_ATLS_SERVER && role != TM_ATLS_CLIENT) return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(md, label, strlen(label)) == 1 &&
             EVP_DigestUpdate(md, &sep, 1) == 1 &&
             EVP_DigestUpdate(md, nonce, TM_ATLS_NONCE_LEN) == 1 &&
             EVP_DigestUpdate(md, binder, binder_len) == 1 &&
             EVP_DigestUpdate(md, key_share, key_share_len) == 1 &&
             EVP_DigestUpdate(md, spki_hash ? spki_hash : zero, 32) == 1 &&
             EVP_DigestFinal_ex(md, out, &outlen) == 1 && outlen == TM_REPORT_DATA_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static const char *errnames[] = {
    "ok", "format", "malformed", "binding", "chain", "signature", "untrusted",
    "collateral", "tcb", "policy", "unsupported", "internal",
};

const char *tm_verify_strerror(int err)
{
    if (err < 0 || (size_t)err >= sizeof errnames / sizeof errnames[0]) return "unknown";
    return errnames[err];
}

int tm_verify(uint16_t format, const uint8_t *evidence, size_t len,
              const uint8_t *expected_report_data, const tm_policy *policy, time_t at,
              tm_claims *claims, char *reason, size_t reasoncap)
{
    tm_claims scratch;
    tm_policy *dflt = NULL;
    if (!claims) claims = &scratch;
    memset(claims, 0, sizeof *claims);
    snprintf(claims->tcb_status, sizeof claims->tcb_status, "%s", TM_TCB_NOT_EVALUATED);
    claims->appraised_at = at;
    claims->format = format;
    const char *name = tm_format_name(format);
    tm_reasonf(reason, reasoncap, "ok");
    if (!name) {
        tm_reasonf(reason, reasoncap, "unsupported evidence format 0x%04x", format);
        return TM_VERIFY_EFORMAT;
    }
    snprintf(claims->format_name, sizeof claims->format_name, "%s", name);
    if (!evidence || len == 0) {
        tm_reasonf(reason, reasoncap, "%s: empty evidence", name);
        return TM_VERIFY_EMALFORMED;
    }
    if (!policy) {
        dflt = tm_policy_new();
        if (!dflt) {
            tm_reasonf(reason, reasoncap, "out of memory");
            return TM_VERIFY_EINTERNAL;
        }
        policy = dflt;
    }
    int rc;
    if (!tm_policy_format_allowed(policy, format)) {
        tm_reasonf(reason, reasoncap, "evidence format %s is not accepted by policy", name);
        rc = TM_VERIFY_EFORMAT;
    } else if (format == TM_FMT_SIM) {
        rc = tm_verify_sim(evidence, len, expected_report_data, policy, at, claims, reason, reasoncap);
    } else if (format == TM_FMT_SGX_DCAP || format == TM_FMT_TDX_DCAP) {
        rc = tm_verify_dcap(format, evidence, len, expected_report_data, policy, at, claims,
                            reason, reasoncap);
    } else {
        rc = tm_verify_snp(evidence, len, expected_report_data, policy, at, claims, reason, reasoncap);
    }
    tm_policy_free(dflt);
    return rc;
}

uint16_t tm_evidence_guess_format(const uint8_t *ev, size_t len)
{
    if (!ev) return 0;
    if (len >= 8 && memcmp(ev, TM_SIM_MAGIC, 8) == 0) return TM_FMT_SIM;
    if (len >= 8) {
        uint16_t ver = tm_rd16le(ev);
        uint32_t tee = tm_rd32le(ev + 4);
        if (ver == 3 && tee == 0) return TM_FMT_SGX_DCAP;
        if ((ver == 4 || ver == 5) && tee == 0x81) return TM_FMT_TDX_DCAP;
        if (ver == 4 && tee == 0) return TM_FMT_SGX_DCAP;
    }
    /* SEV-SNP reports start with a little-endian version (2 or 3) and are 0x4A0 bytes. */
    if (len >= 0x4A0 && tm_rd32le(ev) >= 2 && tm_rd32le(ev) <= 5) return TM_FMT_SEV_SNP;
    return 0;
}

int tm_evidence_describe(uint16_t format, const uint8_t *ev, size_t len, char *buf, size_t cap)
{
    if (!ev) return TM_VERIFY_EMALFORMED;
    switch (format) {
    case TM_FMT_SIM: {
        tm_sim_report r;
        int rc = tm_sim_parse(ev, len, &r, buf, cap);
        if (rc) return rc;
        char m[65], rd[129];
        tm_hex_encode(r.measurement, 32, m);
        tm_hex_encode(r.report_data, 64, rd);
        uint8_t kh[32];
        char khx[65] = "?";
        if (EVP_Digest(r.spki, r.spki_len, kh, NULL, EVP_sha256(), NULL) == 1) tm_hex_encode(kh, 32, khx);
        snprintf(buf, cap,
                 "format: sim\nmeasurement: %s\nflags: 0x%08x (debug=%u)\ntimestamp: %llu\n"
                 "report_data: %s\nplatform_key_sha256: %s\nsignature: %zu bytes\n",
                 m, (unsigned)r.flags, (unsigned)(r.flags & 1), (unsigned long long)r.timestamp, rd,
                 khx, r.sig_len);
        return 0;
    }
    case TM_FMT_SGX_DCAP:
    case TM_FMT_TDX_DCAP:
        return tm_describe_dcap(format, ev, len, buf, cap);
    case TM_FMT_SEV_SNP:
        return tm_describe_snp(ev, len, buf, cap);
    default:
        tm_reasonf(buf, cap, "unsupported evidence format 0x%04x", format);
        return TM_VERIFY_EFORMAT;
    }
}

/* --- claims printers --- */

typedef struct { char *b; size_t cap, n; } sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) TM_PRINTF(2, 3);
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->n < s->cap ? s->cap - s->n : 0;
    int w = vsnprintf(room ? s->b + s->n : NULL, room, fmt, ap);
    va_end(ap);
    if (w > 0) s->n += (size_t)w;
}

static void sb_hex(sbuf *s, const uint8_t *p, size_t n)
{
    char h[2 * 64 + 1];
    tm_hex_encode(p, n, h);
    sb_printf(s, "%s", h);
}

size_t tm_claims_text(const tm_claims *c, char *buf, size_t cap)
{
    sbuf s = {buf, cap, 0};
    char t[32];
    if (cap) buf[0] = 0;
    sb_printf(&s, "format: %s\n", c->format_name[0] ? c->format_name : "?");
    if (c->has_sgx) {
        sb_printf(&s, "mrenclave: "); sb_hex(&s, c->mrenclave, 32);
        sb_printf(&s, "\nmrsigner: "); sb_hex(&s, c->mrsigner, 32);
        sb_printf(&s, "\nisv_prodid: %u\nisv_svn: %u\n", c->product_id, c->security_version);
    }
    if (c->has_tdx) {
        sb_printf(&s, "mrtd: "); sb_hex(&s, c->mrtd, 48);
        for (int i = 0; i < 4; i++) { sb_printf(&s, "\nrtmr%d: ", i); sb_hex(&s, c->rtmr[i], 48); }
        sb_printf(&s, "\nmrseam: "); sb_hex(&s, c->mrseam, 48);
        sb_printf(&s, "\ntee_tcb_svn: "); sb_hex(&s, c->tee_tcb_svn, 16);
        sb_printf(&s, "\n");
    }
    if (c->has_sim) {
        sb_printf(&s, "measurement: "); sb_hex(&s, c->sim_measurement, 32);
        sb_printf(&s, "\nplatform_key_sha256: "); sb_hex(&s, c->sim_platform_key_sha256, 32);
        sb_printf(&s, "\ntimestamp: %llu\n", (unsigned long long)c->sim_timestamp);
    }
    if (c->fmspc[0]) sb_printf(&s, "fmspc: %s\n", c->fmspc);
    sb_printf(&s, "debug: %s\n", c->debug ? "true" : "false");
    sb_printf(&s, "tcb_status: %s\n", c->tcb_status);
    tm_time_format(c->appraised_at, t, sizeof t);
    sb_printf(&s, "appraised_at: %s\n", t);
    sb_printf(&s, "report_data: "); sb_hex(&s, c->report_data, 64);
    sb_printf(&s, "\n");
    return s.n;
}

size_t tm_claims_json(const tm_claims *c, char *buf, size_t cap)
{
    sbuf s = {buf, cap, 0};
    char t[32];
    if (cap) buf[0] = 0;
    /* All strings we print are our own ASCII (format names, hex, status names
     * validated when parsed), so no escaping is needed beyond that guarantee. */
    sb_printf(&s, "{\"format\":\"%s\"", c->format_name);
    sb_printf(&s, ",\"measurement\":\""); sb_hex(&s, c->measurement, c->measurement_len);
    sb_printf(&s, "\"");
    if (c->has_sgx) {
        sb_printf(&s, ",\"mrenclave\":\""); sb_hex(&s, c->mrenclave, 32);
        sb_printf(&s, "\",\"mrsigner\":\""); sb_hex(&s, c->mrsigner, 32);
        sb_printf(&s, "\"");
    }
    if (c->has_tdx) {
        sb_printf(&s, ",\"mrtd\":\""); sb_hex(&s, c->mrtd, 48);
        sb_printf(&s, "\",\"rtmr\":[");
        for (int i = 0; i < 4; i++) { sb_printf(&s, "%s\"", i ? "," : ""); sb_hex(&s, c->rtmr[i], 48); sb_printf(&s, "\""); }
        sb_printf(&s, "],\"mrseam\":\""); sb_hex(&s, c->mrseam, 48);
        sb_printf(&s, "\",\"tee_tcb_svn\":\""); sb_hex(&s, c->tee_tcb_svn, 16);
        sb_printf(&s, "\"");
    }
    if (c->has_sim) {
        sb_printf(&s, ",\"platform_key_sha256\":\""); sb_hex(&s, c->sim_platform_key_sha256, 32);
        sb_printf(&s, "\",\"timestamp\":%llu", (unsigned long long)c->sim_timestamp);
    }
    if (c->fmspc[0]) sb_printf(&s, ",\"fmspc\":\"%s\"", c->fmspc);
    sb_printf(&s, ",\"product_id\":%u,\"security_version\":%u,\"debug\":%s", c->product_id,
              c->security_version, c->debug ? "true" : "false");
    sb_printf(&s, ",\"tcb_status\":\"%s\",\"tcb_evaluated\":%s", c->tcb_status,
              c->tcb_evaluated ? "true" : "false");
    tm_time_format(c->appraised_at, t, sizeof t);
    sb_printf(&s, ",\"appraised_at\":\"%s\",\"report_data\":\"", t);
    sb_hex(&s, c->report_data, 64);
    sb_printf(&s, "\"}");
    return s.n;
}
