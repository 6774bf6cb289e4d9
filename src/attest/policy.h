/*
 * policy.h — what a verifier accepts (format documented in
 * docs/attestation-policy.md).
 *
 * Owns: parsing policy files (`key value` lines, '#' comments, every error
 * reported as file:line), the files a policy names (collateral, collateral
 * cache directory, SEV-SNP VCEK cache, sim platform keys: all read when the
 * policy is loaded, so verifiers never touch files), and answering the
 * verifiers' questions: is this format accepted, which collateral applies to
 * this FMSPC, is this sim platform key trusted, do these claims satisfy the
 * measurement / platform / SVN / debug rules, is this TCB status acceptable,
 * and for ACLs: are the claims in a named measurement set.
 *
 * Fails closed: a fresh (empty) policy accepts nothing. Evidence passes only
 * when the policy pins at least one measurement of its format (or says
 * allow_any_measurement true), DCAP evidence needs collateral (or
 * allow_missing_collateral true), sim needs a trusted platform key. Anything
 * that widens acceptance is listed by tm_policy_warnings() for the caller's log.
 *
 * Lifetime: reference counted (single-threaded use). tm_policy_free() drops
 * one reference; tm_policy_refresh() swaps in a newly loaded policy and drops
 * the caller's reference to the old one, which stays valid for other holders.
 */
#ifndef TM_ATTEST_POLICY_H
#define TM_ATTEST_POLICY_H
#include <stddef.h>
#include <stdint.h>
#include "attest/claims.h"

typedef struct tm_policy tm_policy;

tm_policy *tm_policy_new(void);
/* Adds a reference (returns p). */
tm_policy *tm_policy_ref(tm_policy *p);
/* Drops a reference; frees on the last. NULL is fine. */
void tm_policy_free(tm_policy *p);

/* Reads and applies a policy file. 0 ok; -1 with "path:line: reason". Relative
 * paths inside the file are taken relative to the file's directory. The path
 * and every file and directory read are remembered for tm_policy_refresh(). */
int tm_policy_load(tm_policy *p, const char *path, char *err, size_t errcap);
/* Applies policy text (`name` is used in error messages as name:line). */
int tm_policy_parse(tm_policy *p, const char *text, size_t len, const char *name,
                    char *err, size_t errcap);
/* Applies a single `key value` setting, exactly as a policy file line. */
int tm_policy_set(tm_policy *p, const char *key, const char *value, char *err, size_t errcap);
/* Installs collateral bytes (JSON, see attestation-policy.md) for a format, copied.
 * Applies to every FMSPC, like a `collateral FORMAT PATH` line. */
int tm_policy_set_collateral(tm_policy *p, uint16_t format, const uint8_t *data, size_t len);
/* Adds a SEV-SNP VCEK certificate (DER or PEM), like an `snp_vcek FILE` line. */
int tm_policy_add_snp_vcek(tm_policy *p, const uint8_t *data, size_t len, char *err, size_t errcap);

/*
 * Picks up changes without restart: when the policy was loaded from a file
 * and that file, or any file or directory it read (collateral, collateral_dir
 * and its entries, VCEKs, keys), changed (mtime, size or inode), loads the
 * file again into a new policy. 1: *p replaced (the caller's reference to the
 * old policy dropped); 0: nothing changed (or not loaded from a file);
 * -1: the reload failed, *p unchanged, reason in err. Settings applied with
 * tm_policy_set / _set_collateral after loading are not carried over.
 */
int tm_policy_refresh(tm_policy **p, char *err, size_t errcap);

/* Lines ("warning: ...\n") for every setting that widens acceptance
 * (allow_missing_collateral, allow_any_measurement, allow_debug, ...), for the
 * caller to log when the policy is loaded. Returns the number of warnings. */
int tm_policy_warnings(const tm_policy *p, char *buf, size_t cap);

/* --- queries (used by verifiers and the broker) --- */
int tm_policy_format_allowed(const tm_policy *p, uint16_t format);
/* +key evidence: the longest an attestation key may still be valid at
 * appraisal (max_key_lifetime, seconds; default below). */
#define TM_POLICY_MAX_KEY_LIFETIME 86400
uint32_t tm_policy_max_key_lifetime(const tm_policy *p);
/* Collateral for `format` and the quote's FMSPC (12 lowercase hex digits, or
 * NULL): the collateral_dir file for that FMSPC, else the explicit
 * `collateral FORMAT PATH` one, else NULL. */
const uint8_t *tm_policy_collateral(const tm_policy *p, uint16_t format, const char *fmspc, size_t *len);
/* 1 when the policy names collateral for `format` or a collateral_dir (for messages). */
int tm_policy_has_collateral_source(const tm_policy *p, uint16_t format);
int tm_policy_allow_missing_collateral(const tm_policy *p);
/* SEV-SNP VCEKs from snp_vcek / snp_vcek_dir (DER). */
size_t tm_policy_snp_vcek_count(const tm_policy *p);
const uint8_t *tm_policy_snp_vcek(const tm_policy *p, size_t i, size_t *len);
int tm_policy_sim_key_trusted(const tm_policy *p, const uint8_t spki_sha256[32]);
int tm_policy_tcb_status_ok(const tm_policy *p, const char *status);
/* Comma-separated accepted statuses, for messages. */
void tm_policy_tcb_statuses(const tm_policy *p, char *buf, size_t cap);
/* Measurement / platform / product / SVN / TCB / debug rules. 0 ok, -1 with
 * a reason naming the rule. Sets c->any_measurement_allowed when the claims
 * pass only because of allow_any_measurement. */
int tm_policy_check_claims(const tm_policy *p, tm_claims *c, char *reason, size_t cap);
/* 1 when an entry of measurement_set `name` matches the claims (typed entries:
 * every field of the entry; `HEX`: the primary measurement; `mrsigner:HEX`:
 * the SGX MRSIGNER); 0 otherwise. */
int tm_policy_in_set(const tm_policy *p, const char *name, const tm_claims *c);
#endif
