/*
 * evidence.c — format registry, the session binding, claims printers and the
 * tm_verify() dispatcher.
 *
 * tm_verify() owns the checks common to every format (policy accepts the
 * format, arguments sane, claims reset) and hands the bytes to the verifier
 * of that format (sim.c, dcap.c, snp.c; keyatt.c for the +key formats,
 * which wrap one of the others). Each verifier compares the binding in
 * constant time right after locating report_data, before it looks at
 * signatures or certificates (+key: the key's signature over the binding
 * comes first).
 */
#include "attest/attest_int.h"
#include "attest/keyatt.h"

#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

static const struct { uint16_t id; const char *name; } formats[] = {
    {TM_FMT_SIM, "sim"},
    {TM_FMT_SGX_DCAP, "sgx-dcap"},
    {TM_FMT_TDX_DCAP, "tdx-dcap"},
    {TM_FMT_SEV_SNP, "sev-snp"},
    {TM_FMT_SIM_KEY, "sim+key"},
    {TM_FMT_SGX_DCAP_KEY, "sgx-dcap+key"},
    {TM_FMT_TDX_DCAP_KEY, "tdx-dcap+key"},
    {TM_FMT_SEV_SNP_KEY, "sev-snp+key"},
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

int tm_format_is_keyatt(uint16_t format)
{
    return format >= TM_FMT_SIM_KEY && format <= TM_FMT_SEV_SNP_KEY;
}

uint16_t tm_format_platform(uint16_t format)
{
    return tm_format_is_keyatt(format) ? (uint16_t)(format & ~TM_FMT_KEY_FLAG) : format;
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
    "collateral", "tcb", "policy", "unsupported", "internal", "key",
};

const char *tm_verify_strerror(int err)
{
    if (err < 0 || (size_t)err >= sizeof errnames / sizeof errnames[0]) return "unknown";
    return errnames[err];
}

int tm_verify_platform(uint16_t format, const uint8_t *ev, size_t len, const uint8_t *expected,
                       const tm_policy *policy, time_t at, tm_claims *claims, char *reason, size_t cap)
{
    if (format == TM_FMT_SIM) return tm_verify_sim(ev, len, expected, policy, at, claims, reason, cap);
    if (format == TM_FMT_SGX_DCAP || format == TM_FMT_TDX_DCAP)
        return tm_verify_dcap(format, ev, len, expected, policy, at, claims, reason, cap);
    if (format == TM_FMT_SEV_SNP) return tm_verify_snp(ev, len, expected, policy, at, claims, reason, cap);
    tm_reasonf(reason, cap, "unsupported evidence format 0x%04x", format);
    return TM_VERIFY_EFORMAT;
}

int tm_verify_cached(tm_verify_cache *cache, uint16_t format, const uint8_t *evidence, size_t len,
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
    } else if (tm_format_is_keyatt(format)) {
        rc = tm_verify_keyatt(cache, format, evidence, len, expected_report_data, policy, at, claims,
                              reason, reasoncap);
    } else {
        rc = tm_verify_platform(format, evidence, len, expected_report_data, policy, at, claims, reason,
                                reasoncap);
    }
    tm_policy_free(dflt);
    return rc;
}

int tm_verify(uint16_t format, const uint8_t *evidence, size_t len,
              const uint8_t *expected_report_data, const tm_policy *policy, time_t at,
              tm_claims *claims, char *reason, size_t reasoncap)
{
    return tm_verify_cached(NULL, format, evidence, len, expected_report_data, policy, at, claims,
                            reason, reasoncap);
}

static uint16_t guess_platform(const uint8_t *ev, size_t len);

uint16_t tm_evidence_guess_format(const uint8_t *ev, size_t len)
{
    if (!ev) return 0;
    uint16_t f = guess_platform(ev, len);
    if (f) return f;
    /* KeyAttestedEvidence: decodes exactly, and what it wraps is recognised */
    tm_keyatt_ev k;
    if (tm_keyatt_decode(ev, len, &k, NULL, 0) == TM_VERIFY_OK) {
        f = guess_platform(k.platform, k.platform_len);
        if (f) return (uint16_t)(f | TM_FMT_KEY_FLAG);
    }
    return 0;
}

static uint16_t guess_platform(const uint8_t *ev, size_t len)
{
    if (len >= 8 && memcmp(ev, TM_SIM_MAGIC, 8) == 0) return TM_FMT_SIM;
    if (len >= 8 && tm_rd16le(ev + 2) == 2) { /* DCAP: attestation key type 2 */
        uint16_t ver = tm_rd16le(ev);
        uint32_t tee = tm_rd32le(ev + 4);
        if (ver == 3 && tee == 0) return TM_FMT_SGX_DCAP;
        if ((ver == 4 || ver == 5) && tee == 0x81) return TM_FMT_TDX_DCAP;
        if (ver == 4 && tee == 0) return TM_FMT_SGX_DCAP;
    }
    /* SEV-SNP reports start with a little-endian u32 version (2..5), are 0x4A0
     * bytes (plus an optional certificate table) and say signature algorithm 1. */
    if (len >= 0x4A0 && tm_rd32le(ev) >= 2 && tm_rd32le(ev) <= 5 && tm_rd32le(ev + 0x34) == 1)
        return TM_FMT_SEV_SNP;
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
    case TM_FMT_SIM_KEY:
    case TM_FMT_SGX_DCAP_KEY:
    case TM_FMT_TDX_DCAP_KEY:
    case TM_FMT_SEV_SNP_KEY:
        return tm_describe_keyatt(format, ev, len, buf, cap);
    default:
        tm_reasonf(buf, cap, "unsupported evidence format 0x%04x", format);
        return TM_VERIFY_EFORMAT;
    }
}

/* --- claims printers --- */

static void tcb_text(tm_sbuf *s, const tm_snp_tcb *t)
{
    tm_sb_printf(s, "bootloader=%u,tee=%u,snp=%u,microcode=%u", t->bootloader, t->tee, t->snp, t->microcode);
    if (t->has_fmc) tm_sb_printf(s, ",fmc=%u", t->fmc);
}

static void field(tm_sbuf *s, const char *k, const uint8_t *v, size_t n)
{
    tm_sb_printf(s, "%s: ", k);
    tm_sb_hex(s, v, n);
    tm_sb_printf(s, "\n");
}

void tm_claims_fields(tm_sbuf *s, const tm_claims *c)
{
    if (c->has_sgx) {
        field(s, "mrenclave", c->mrenclave, 32);
        field(s, "mrsigner", c->mrsigner, 32);
        tm_sb_printf(s, "isv_prodid: %u\nisv_svn: %u\n", c->product_id, c->security_version);
    }
    if (c->has_tdx) {
        field(s, "mrtd", c->mrtd, 48);
        for (int i = 0; i < 4; i++) {
            char k[8];
            snprintf(k, sizeof k, "rtmr%d", i);
            field(s, k, c->rtmr[i], 48);
        }
        field(s, "mrconfigid", c->mrconfigid, 48);
        field(s, "mrowner", c->mrowner, 48);
        field(s, "mrownerconfig", c->mrownerconfig, 48);
        tm_sb_printf(s, "xfam: 0x%016llx\ntd_attributes: 0x%016llx\n", (unsigned long long)c->xfam,
                     (unsigned long long)c->tdattributes);
        field(s, "mrseam", c->mrseam, 48);
        field(s, "mrsignerseam", c->mrsignerseam, 48);
        tm_sb_printf(s, "seam_attributes: 0x%016llx\n", (unsigned long long)c->seam_attributes);
        field(s, "tee_tcb_svn", c->tee_tcb_svn, 16);
        if (c->tdx_report_v15) {
            field(s, "tee_tcb_svn2", c->tee_tcb_svn2, 16);
            field(s, "mrservicetd", c->mrservicetd, 48);
        }
    }
    if (c->has_snp) {
        tm_sb_printf(s, "snp_report_version: %u\n", (unsigned)c->snp_version);
        if (c->snp_product[0]) tm_sb_printf(s, "snp_product: %s\n", c->snp_product);
        field(s, "measurement", c->snp_measurement, 48);
        field(s, "host_data", c->host_data, 32);
        field(s, "id_key_digest", c->id_key_digest, 48);
        field(s, "author_key_digest", c->author_key_digest, 48);
        tm_sb_printf(s, "guest_svn: %u\nguest_policy: 0x%016llx\nvmpl: %u\n", (unsigned)c->guest_svn,
                     (unsigned long long)c->snp_policy, (unsigned)c->vmpl);
        tm_sb_printf(s, "reported_tcb: 0x%016llx (", (unsigned long long)c->reported_tcb_raw);
        tcb_text(s, &c->reported_tcb);
        tm_sb_printf(s, ")\nsigning_key: %s\n", c->snp_signing_key == 0 ? "vcek"
                                               : c->snp_signing_key == 1 ? "vlek" : "none");
        field(s, "chip_id", c->chip_id, 64);
    }
    if (c->has_sim) {
        field(s, "measurement", c->sim_measurement, 32);
        field(s, "platform_key_sha256", c->sim_platform_key_sha256, 32);
        tm_sb_printf(s, "timestamp: %llu\n", (unsigned long long)c->sim_timestamp);
    }
    if (c->has_pck) {
        field(s, "ppid", c->ppid, 16);
        field(s, "pce_id", c->pce_id, 2);
        if (c->has_platform_instance_id) field(s, "platform_instance_id", c->platform_instance_id, 16);
    }
    if (c->fmspc[0]) tm_sb_printf(s, "fmspc: %s\n", c->fmspc);
    field(s, "report_data", c->report_data, 64);
}

size_t tm_claims_text(const tm_claims *c, char *buf, size_t cap)
{
    tm_sbuf s = {buf, cap, 0};
    char t[32];
    if (cap) buf[0] = 0;
    tm_sb_printf(&s, "format: %s\n", c->format_name[0] ? c->format_name : "?");
    tm_claims_fields(&s, c);
    tm_sb_printf(&s, "debug: %s\n", c->debug ? "true" : "false");
    tm_sb_printf(&s, "tcb_status: %s\n", c->tcb_status);
    if (c->collateral_missing_allowed)
        tm_sb_printf(&s, "warning: no collateral (allow_missing_collateral): quoting enclave not checked\n");
    if (c->any_measurement_allowed)
        tm_sb_printf(&s, "warning: no measurement pinned (allow_any_measurement)\n");
    if (c->key_attested) {
        field(&s, "attestation_key_sha256", c->key_sha256, 32);
        tm_time_format((time_t)c->key_not_after, t, sizeof t);
        tm_sb_printf(&s, "key_attested: true\nkey_not_after: %s\n", t);
    }
    tm_time_format(c->appraised_at, t, sizeof t);
    tm_sb_printf(&s, "appraised_at: %s\n", t);
    return s.n;
}

static void jfield(tm_sbuf *s, const char *k, const uint8_t *v, size_t n)
{
    tm_sb_printf(s, ",\"%s\":\"", k);
    tm_sb_hex(s, v, n);
    tm_sb_printf(s, "\"");
}

size_t tm_claims_json(const tm_claims *c, char *buf, size_t cap)
{
    tm_sbuf s = {buf, cap, 0};
    char t[32];
    if (cap) buf[0] = 0;
    /* All strings we print are our own ASCII (format names, hex, status names
     * validated when parsed, product names checked when read), so no escaping
     * is needed beyond that guarantee. */
    tm_sb_printf(&s, "{\"format\":\"%s\"", c->format_name);
    jfield(&s, "measurement", c->measurement, c->measurement_len);
    if (c->has_sgx) {
        jfield(&s, "mrenclave", c->mrenclave, 32);
        jfield(&s, "mrsigner", c->mrsigner, 32);
    }
    if (c->has_tdx) {
        jfield(&s, "mrtd", c->mrtd, 48);
        tm_sb_printf(&s, ",\"rtmr\":[");
        for (int i = 0; i < 4; i++) {
            tm_sb_printf(&s, "%s\"", i ? "," : "");
            tm_sb_hex(&s, c->rtmr[i], 48);
            tm_sb_printf(&s, "\"");
        }
        tm_sb_printf(&s, "]");
        jfield(&s, "mrconfigid", c->mrconfigid, 48);
        jfield(&s, "mrowner", c->mrowner, 48);
        jfield(&s, "mrownerconfig", c->mrownerconfig, 48);
        tm_sb_printf(&s, ",\"xfam\":\"%016llx\",\"td_attributes\":\"%016llx\"", (unsigned long long)c->xfam,
                     (unsigned long long)c->tdattributes);
        jfield(&s, "mrseam", c->mrseam, 48);
        jfield(&s, "mrsignerseam", c->mrsignerseam, 48);
        tm_sb_printf(&s, ",\"seam_attributes\":\"%016llx\"", (unsigned long long)c->seam_attributes);
        jfield(&s, "tee_tcb_svn", c->tee_tcb_svn, 16);
        if (c->tdx_report_v15) {
            jfield(&s, "tee_tcb_svn2", c->tee_tcb_svn2, 16);
            jfield(&s, "mrservicetd", c->mrservicetd, 48);
        }
    }
    if (c->has_snp) {
        tm_sb_printf(&s, ",\"snp_report_version\":%u,\"snp_product\":\"%s\"", (unsigned)c->snp_version,
                     c->snp_product);
        jfield(&s, "host_data", c->host_data, 32);
        jfield(&s, "id_key_digest", c->id_key_digest, 48);
        jfield(&s, "author_key_digest", c->author_key_digest, 48);
        tm_sb_printf(&s, ",\"guest_svn\":%u,\"guest_policy\":\"%016llx\",\"vmpl\":%u", (unsigned)c->guest_svn,
                     (unsigned long long)c->snp_policy, (unsigned)c->vmpl);
        const tm_snp_tcb *r = &c->reported_tcb;
        tm_sb_printf(&s, ",\"reported_tcb\":{\"raw\":\"%016llx\",\"bootloader\":%u,\"tee\":%u,\"snp\":%u,"
                     "\"microcode\":%u", (unsigned long long)c->reported_tcb_raw, r->bootloader, r->tee, r->snp,
                     r->microcode);
        if (r->has_fmc) tm_sb_printf(&s, ",\"fmc\":%u", r->fmc);
        tm_sb_printf(&s, "},\"signing_key\":\"%s\"", c->snp_signing_key == 0 ? "vcek"
                                                     : c->snp_signing_key == 1 ? "vlek" : "none");
        jfield(&s, "chip_id", c->chip_id, 64);
    }
    if (c->has_sim) {
        jfield(&s, "platform_key_sha256", c->sim_platform_key_sha256, 32);
        tm_sb_printf(&s, ",\"timestamp\":%llu", (unsigned long long)c->sim_timestamp);
    }
    if (c->has_pck) {
        jfield(&s, "ppid", c->ppid, 16);
        jfield(&s, "pce_id", c->pce_id, 2);
        if (c->has_platform_instance_id) jfield(&s, "platform_instance_id", c->platform_instance_id, 16);
    }
    if (c->fmspc[0]) tm_sb_printf(&s, ",\"fmspc\":\"%s\"", c->fmspc);
    tm_sb_printf(&s, ",\"product_id\":%u,\"security_version\":%u,\"debug\":%s", c->product_id,
                 c->security_version, c->debug ? "true" : "false");
    tm_sb_printf(&s, ",\"tcb_status\":\"%s\",\"tcb_evaluated\":%s", c->tcb_status,
                 c->tcb_evaluated ? "true" : "false");
    tm_sb_printf(&s, ",\"collateral_missing_allowed\":%s,\"any_measurement_allowed\":%s",
                 c->collateral_missing_allowed ? "true" : "false", c->any_measurement_allowed ? "true" : "false");
    tm_sb_printf(&s, ",\"key_attested\":%s", c->key_attested ? "true" : "false");
    if (c->key_attested) {
        jfield(&s, "attestation_key_sha256", c->key_sha256, 32);
        tm_time_format((time_t)c->key_not_after, t, sizeof t);
        tm_sb_printf(&s, ",\"key_not_after\":\"%s\"", t);
    }
    tm_time_format(c->appraised_at, t, sizeof t);
    tm_sb_printf(&s, ",\"appraised_at\":\"%s\"", t);
    jfield(&s, "report_data", c->report_data, 64);
    tm_sb_printf(&s, "}");
    return s.n;
}
