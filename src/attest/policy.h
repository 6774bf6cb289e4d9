/*
 * policy.h — what a verifier accepts (format documented in
 * docs/attestation-policy.md).
 *
 * Owns: parsing policy files (`key value` lines, '#' comments, every error
 * reported as file:line) and answering the verifiers' questions: is this
 * format accepted, is this sim platform key trusted, do these claims satisfy
 * the measurement/product/SVN/debug rules, is this TCB status acceptable, and
 * for ACLs: is a measurement in a named set. Collateral files named in the
 * policy are read when the policy is loaded, so verifiers never touch files.
 * A freshly created policy is the default: every format accepted except that
 * sim needs a trusted key, any measurement, debug refused, TCB status
 * UpToDate only, collateral optional.
 */
#ifndef TM_ATTEST_POLICY_H
#define TM_ATTEST_POLICY_H
#include <stddef.h>
#include <stdint.h>
#include "attest/claims.h"

typedef struct tm_policy tm_policy;

tm_policy *tm_policy_new(void);
void tm_policy_free(tm_policy *p);

/* Reads and applies a policy file. 0 ok; -1 with "path:line: reason". Relative
 * paths inside the file are taken relative to the file's directory. */
int tm_policy_load(tm_policy *p, const char *path, char *err, size_t errcap);
/* Applies policy text (`name` is used in error messages as name:line). */
int tm_policy_parse(tm_policy *p, const char *text, size_t len, const char *name,
                    char *err, size_t errcap);
/* Applies a single `key value` setting, exactly as a policy file line. */
int tm_policy_set(tm_policy *p, const char *key, const char *value, char *err, size_t errcap);
/* Installs collateral bytes (JSON, see attestation-policy.md) for a format, copied. */
int tm_policy_set_collateral(tm_policy *p, uint16_t format, const uint8_t *data, size_t len);

/* --- queries (used by verifiers and the broker) --- */
int tm_policy_format_allowed(const tm_policy *p, uint16_t format);
const uint8_t *tm_policy_collateral(const tm_policy *p, uint16_t format, size_t *len);
int tm_policy_require_collateral(const tm_policy *p);
int tm_policy_sim_key_trusted(const tm_policy *p, const uint8_t spki_sha256[32]);
int tm_policy_tcb_status_ok(const tm_policy *p, const char *status);
/* Comma-separated accepted statuses, for messages. */
void tm_policy_tcb_statuses(const tm_policy *p, char *buf, size_t cap);
/* Measurement / product / SVN / debug rules. 0 ok, -1 with a reason. */
int tm_policy_check_claims(const tm_policy *p, const tm_claims *c, char *reason, size_t cap);
/* 1 when the claims' primary measurement (or MRSIGNER, for entries written
 * `mrsigner:HEX`) is listed in measurement_set `name`; 0 otherwise. */
int tm_policy_in_set(const tm_policy *p, const char *name, const tm_claims *c);
#endif
