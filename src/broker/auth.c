/*
 * auth.c — password file and ACL file, both in Mosquitto's formats so that
 * existing files (and mosquitto_passwd) keep working.
 *
 * Password file: `user:$7$ITERATIONS$SALT_B64$HASH_B64` (PBKDF2-HMAC-SHA512,
 * 64-byte hash) or the older `user:$6$SALT_B64$HASH_B64` (SHA-512 of password
 * then salt). A slow hash blocks the single event-loop thread, so after one
 * successful slow check the entry remembers SHA-256(salt || password) and
 * later logins with the same password cost one SHA-256; wrong passwords
 * always pay the full price.
 *
 * ACL file: `topic [read|write|readwrite|deny] TOPIC` lines before any `user`
 * line apply to anonymous clients; after `user NAME` they apply to NAME;
 * `pattern [..] TOPIC` lines apply to everyone with %c (client id) and %u
 * (user name) substituted. A matching deny wins; otherwise some rule must
 * grant the access. Without an ACL file everything is allowed.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "attest/atls_peer.h"
#include "broker/broker_int.h"
#include "broker/passwd.h"

typedef struct pw_entry {
    char *user;
    int kind;                 /* 6 or 7 */
    unsigned iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t hash[64];
    uint8_t fast[32];         /* SHA-256(salt || password) after a good login */
    bool fast_ok;
} pw_entry;

typedef struct acl_rule {
    int access;               /* TM_ACC_READ | TM_ACC_WRITE, 0 = deny */
    char *topic;
} acl_rule;

typedef struct acl_list {
    acl_rule *r;
    uint32_t n, cap;
} acl_list;

typedef struct acl_user {
    char *user;
    acl_list rules;
} acl_user;

/* `attested SETNAME` blocks: rules for connections whose attestation claims
 * (mutual attested TLS) are in the named measurement set of the listener's
 * client attestation policy. */
typedef struct acl_attested {
    char *set;
    acl_list rules;
} acl_attested;

struct tm_auth {
    pw_entry *pw;
    uint32_t n_pw;
    bool has_pw;
    bool has_acl;
    acl_list anon;
    acl_list patterns;
    acl_user *users;
    uint32_t n_users;
    acl_attested *sets;
    uint32_t n_sets;
};


/* ---- base64 ----------------------------------------------------------- */

int tm_b64_decode(const char *in, uint8_t *out, size_t cap)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap + 2)
        return -1;
    uint8_t tmp[256];
    if (n / 4 * 3 > sizeof tmp)
        return -1;
    int len = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    if ((size_t)len > cap)
        return -1;
    memcpy(out, tmp, (size_t)len);
    return len;
}

void tm_b64_encode(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- password file --------------------------------------------------- */

int tm_passwd_hash(const char *password, const uint8_t *salt, size_t salt_len,
                   unsigned iterations, uint8_t out[64])
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
                             (int)iterations, EVP_sha512(), 64, out) == 1 ? 0 : -1;
}

static int parse_pw_line(char *line, pw_entry *e, char *why, size_t whycap)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line) {
        snprintf(why, whycap, "expected 'user:hash'");
        return -1;
    }
    *colon = 0;
    char *h = colon + 1;
    memset(e, 0, sizeof e[0]);
    if (strncmp(h, "$7$", 3) == 0) {
        char *it = h + 3, *d1 = strchr(it, '$');
        if (!d1) {
            snprintf(why, whycap, "malformed $7$ entry");
            return -1;
        }
        *d1 = 0;
        char *end;
        errno = 0;
        unsigned long iters = strtoul(it, &end, 10);
        if (errno || *end || iters == 0 || iters > 100000000) {
            snprintf(why, whycap, "bad iteration count '%s'", it);
            return -1;
        }
        char *salt = d1 + 1, *d2 = strchr(salt, '$');
        if (!d2) {
            snprintf(why, whycap, "malformed $7$ entry");
            return -1;
        }
        *d2 = 0;
        e->kind = 7;
        e->iterations = (unsigned)iters;
        int sl = tm_b64_decode(salt, e->salt, sizeof e->salt);
        int hl = tm_b64_decode(d2 + 1, e->hash, sizeof e->hash);
        if (sl <= 0 || hl != 64) {
            snprintf(why, whycap, "bad base64 salt or hash");
            return -1;
        }
        e->salt_len = (size_t)sl;
    } else if (strncmp(h, "$6$", 3) == 0) {
        char *salt = h + 3, *d = strchr(salt, '$');
        if (!d) {
            snprintf(why, whycap, "malformed $6$ entry");
            return -1;
        }
        *d = 0;
        e->kind = 6;
        int sl = tm_b64_decode(salt, e->salt, sizeof e->salt);
        int hl = tm_b64_decode(d + 1, e->hash, sizeof e->hash);
        if (sl <= 0 || hl != 64) {
            snprintf(why, whycap, "bad base64 salt or hash");
            return -1;
        }
        e->salt_len = (size_t)sl;
    } else {
        snprintf(why, whycap, "unsupported hash format (plain-text passwords are not accepted; "
                              "use tmqtt-passwd or mosquitto_passwd)");
        return -1;
    }
    e->user = strdup(line);
    return e->user ? 0 : -1;
}

static int load_passwords(struct tm_auth *a, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open password file: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int ln = 0;
    a->has_pw = true;
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        pw_entry e;
        char why[160];
        if (parse_pw_line(line, &e, why, sizeof why) < 0) {
            snprintf(err, errcap, "%s:%d: %s", path, ln, why);
            fclose(f);
            return -1;
        }
        pw_entry *n = realloc(a->pw, (a->n_pw + 1) * sizeof *n);
        if (!n) {
            free(e.user);
            fclose(f);
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        a->pw = n;
        a->pw[a->n_pw++] = e;
    }
    fclose(f);
    return 0;
}

static int fast_digest(const uint8_t *salt, size_t salt_len, tm_str pass, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, salt, salt_len) == 1 &&
             EVP_DigestUpdate(ctx, pass.p, pass.len) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

int tm_auth_check_password(struct tm_auth *a, tm_str user, tm_str pass)
{
    if (!a || !a->has_pw)
        return -1;
    for (uint32_t i = 0; i < a->n_pw; i++) {
        pw_entry *e = &a->pw[i];
        if (strlen(e->user) != user.len || memcmp(e->user, user.p, user.len) != 0)
            continue;
        if (!pass.p)
            return 0;
        uint8_t fast[32];
        if (fast_digest(e->salt, e->salt_len, pass, fast) < 0)
            return 0;
        if (e->fast_ok && CRYPTO_memcmp(fast, e->fast, 32) == 0)
            return 1;
        uint8_t h[64];
        if (e->kind == 7) {
            if (PKCS5_PBKDF2_HMAC((const char *)pass.p, (int)pass.len, e->salt,
                                  (int)e->salt_len, (int)e->iterations, EVP_sha512(), 64,
                                  h) != 1)
                return 0;
        } else {
            EVP_MD_CTX *ctx = EVP_MD_CTX_new();
            unsigned hl = 0;
            if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) != 1 ||
                EVP_DigestUpdate(ctx, pass.p, pass.len) != 1 ||
                EVP_DigestUpdate(ctx, e->salt, e->salt_len) != 1 ||
                EVP_DigestFinal_ex(ctx, h, &hl) != 1) {
                EVP_MD_CTX_free(ctx);
                return 0;
            }
            EVP_MD_CTX_free(ctx);
        }
        if (CRYPTO_memcmp(h, e->hash, 64) != 0)
            return 0;
        memcpy(e->fast, fast, 32);
        e->fast_ok = true;
        return 1;
    }
    return 0;
}

/* ---- ACL ------------------------------------------------------------- */

static int list_add(acl_list *l, int access, const char *topic)
{
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? l->cap * 2 : 8;
        acl_rule *nr = realloc(l->r, nc * sizeof *nr);
        if (!nr)
            return -1;
        l->r = nr;
        l->cap = nc;
    }
    l->r[l->n].access = access;
    l->r[l->n].topic = strdup(topic);
    if (!l->r[l->n].topic)
        return -1;
    l->n++;
    return 0;
}

static void list_free(acl_list *l)
{
    for (uint32_t i = 0; i < l->n; i++)
        free(l->r[i].topic);
    free(l->r);
}

static int parse_access(const char *w, int *access)
{
    if (strcmp(w, "read") == 0)
        *access = TM_ACC_READ;
    else if (strcmp(w, "write") == 0)
        *access = TM_ACC_WRITE;
    else if (strcmp(w, "readwrite") == 0)
        *access = TM_ACC_READ | TM_ACC_WRITE;
    else if (strcmp(w, "deny") == 0)
        *access = 0;
    else
        return -1;
    return 0;
}

static int load_acl(struct tm_auth *a, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open ACL file: %s", path, strerror(errno));
        return -1;
    }
    a->has_acl = true;
    acl_list *cur = &a->anon;
    char line[1024];
    int ln = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        char *kw = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (*s)
            *s++ = 0;
        while (isspace((unsigned char)*s))
            s++;
        char *rest = s;
        size_t rl = strlen(rest);
        while (rl && isspace((unsigned char)rest[rl - 1]))
            rest[--rl] = 0;
        if (strcmp(kw, "user") == 0) {
            if (!*rest) {
                snprintf(err, errcap, "%s:%d: user: missing name", path, ln);
                rc = -1;
                break;
            }
            acl_user *nu = realloc(a->users, (a->n_users + 1) * sizeof *nu);
            if (!nu) {
                rc = -1;
                break;
            }
            a->users = nu;
            memset(&nu[a->n_users], 0, sizeof nu[0]);
            nu[a->n_users].user = strdup(rest);
            cur = &nu[a->n_users].rules;
            a->n_users++;
            continue;
        }
        if (strcmp(kw, "attested") == 0) {
            if (!*rest || strpbrk(rest, " \t")) {
                snprintf(err, errcap, "%s:%d: attested: expected one measurement set name",
                         path, ln);
                rc = -1;
                break;
            }
            acl_attested *ns = realloc(a->sets, (a->n_sets + 1) * sizeof *ns);
            if (!ns) {
                rc = -1;
                break;
            }
            a->sets = ns;
            memset(&ns[a->n_sets], 0, sizeof ns[0]);
            ns[a->n_sets].set = strdup(rest);
            cur = &ns[a->n_sets].rules;
            a->n_sets++;
            continue;
        }
        if (strcmp(kw, "topic") == 0 || strcmp(kw, "pattern") == 0) {
            int access = TM_ACC_READ | TM_ACC_WRITE;
            char *topic = rest;
            char *sp = strpbrk(rest, " \t");
            if (sp) {
                char save = *sp;
                *sp = 0;
                if (parse_access(rest, &access) == 0) {
                    topic = sp + 1;
                    while (isspace((unsigned char)*topic))
                        topic++;
                } else {
                    *sp = save;
                }
            }
            if (!*topic || !tm_topic_filter_valid((const uint8_t *)topic, strlen(topic))) {
                snprintf(err, errcap, "%s:%d: %s: invalid topic '%s'", path, ln, kw, topic);
                rc = -1;
                break;
            }
            acl_list *l = strcmp(kw, "pattern") == 0 ? &a->patterns : cur;
            if (list_add(l, access, topic) < 0) {
                rc = -1;
                break;
            }
            continue;
        }
        snprintf(err, errcap,
                 "%s:%d: unknown ACL keyword '%s' (expected topic, user, pattern or attested)",
                 path, ln, kw);
        rc = -1;
        break;
    }
    fclose(f);
    return rc;
}

/* Prefix err with the configuration line that named the failing file. */
static void where(const tm_config *cfg, int line, char *err, size_t errcap)
{
    if (!cfg->path || !line)
        return;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s:%d: %s", cfg->path, line, err);
    snprintf(err, errcap, "%s", tmp);
}

struct tm_auth *tm_auth_load(const tm_config *cfg, char *err, size_t errcap)
{
    struct tm_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    if (cfg->password_file && load_passwords(a, cfg->password_file, err, errcap) < 0) {
        where(cfg, cfg->password_file_line, err, errcap);
        tm_auth_free(a);
        return NULL;
    }
    if (cfg->acl_file && load_acl(a, cfg->acl_file, err, errcap) < 0) {
        where(cfg, cfg->acl_file_line, err, errcap);
        tm_auth_free(a);
        return NULL;
    }
    return a;
}

void tm_auth_free(struct tm_auth *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->n_pw; i++)
        free(a->pw[i].user);
    free(a->pw);
    list_free(&a->anon);
    list_free(&a->patterns);
    for (uint32_t i = 0; i < a->n_users; i++) {
        free(a->users[i].user);
        list_free(&a->users[i].rules);
    }
    free(a->users);
    for (uint32_t i = 0; i < a->n_sets; i++) {
        free(a->sets[i].set);
        list_free(&a->sets[i].rules);
    }
    free(a->sets);
    free(a);
}

/* Does the ACL filter `rule` cover every topic that `filter` can match? */
static bool covers(const char *rule, tm_str filter)
{
    const char *r = rule;
    const uint8_t *f = filter.p, *fend = filter.p + filter.len;
    for (;;) {
        const char *rs = strchr(r, '/');
        size_t rl = rs ? (size_t)(rs - r) : strlen(r);
        const uint8_t *fs = memchr(f, '/', (size_t)(fend - f));
        size_t fl = fs ? (size_t)(fs - f) : (size_t)(fend - f);
        if (rl == 1 && r[0] == '#')
            return true;
        if (fl == 1 && f[0] == '#')
            return false;
        if (!(rl == 1 && r[0] == '+')) {
            if (fl == 1 && f[0] == '+')
                return false;
            if (rl != fl || memcmp(r, f, rl) != 0)
                return false;
        }
        if (!rs && !fs)
            return true;
        if (!fs) {
            /* filter ended: "a/#" rule also covers "a" */
            return rs && strcmp(rs + 1, "#") == 0;
        }
        if (!rs)
            return false;
        r = rs + 1;
        f = fs + 1;
    }
}

/* Substitute %c and %u; false when the rule cannot apply (no user name, or a
 * value that would change the rule's structure). */
static bool substitute(const char *pat, const char *user, const char *cid, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pat; *p; p++) {
        const char *val = NULL;
        if (p[0] == '%' && (p[1] == 'c' || p[1] == 'u')) {
            val = p[1] == 'c' ? cid : user;
            if (!val || strpbrk(val, "/+#"))
                return false;
            size_t vl = strlen(val);
            if (o + vl >= cap)
                return false;
            memcpy(out + o, val, vl);
            o += vl;
            p++;
            continue;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = *p;
    }
    out[o] = 0;
    return true;
}

static bool rule_matches(const char *rule, tm_str topic, int access)
{
    if (access & TM_ACC_SUBSCRIBE)
        return covers(rule, topic);
    return tm_topic_match((const uint8_t *)rule, strlen(rule), topic.p, topic.len);
}

/* 1 = deny matched, 2 = grant matched, 0 = nothing */
static int check_rule(const acl_rule *r, const char *topic_rule, tm_str topic, int access)
{
    int need = (access & TM_ACC_SUBSCRIBE) ? TM_ACC_READ : access;
    if (r->access == 0) {
        /* a deny rule blocks a subscription only when it covers all of it;
         * messages on denied topics are still filtered at delivery */
        if (rule_matches(topic_rule, topic, access))
            return 1;
        return 0;
    }
    if ((r->access & need) && rule_matches(topic_rule, topic, access))
        return 2;
    return 0;
}

bool tm_acl_allowed(struct tm_auth *a, const char *username, const char *client_id,
                    const struct tm_atls_peer *attest, tm_str topic, int access)
{
    if (!a || !a->has_acl)
        return true;
    bool granted = false;
    if (attest) {
        for (uint32_t k = 0; k < a->n_sets; k++) {
            if (!tm_atls_peer_in_set(attest, a->sets[k].set))
                continue;
            const acl_list *l = &a->sets[k].rules;
            for (uint32_t i = 0; i < l->n; i++) {
                int m = check_rule(&l->r[i], l->r[i].topic, topic, access);
                if (m == 1)
                    return false;
                if (m == 2)
                    granted = true;
            }
        }
    }
    const acl_list *own = &a->anon;
    if (username) {
        own = NULL;
        for (uint32_t i = 0; i < a->n_users; i++)
            if (strcmp(a->users[i].user, username) == 0)
                own = &a->users[i].rules;
    }
    if (own) {
        for (uint32_t i = 0; i < own->n; i++) {
            int m = check_rule(&own->r[i], own->r[i].topic, topic, access);
            if (m == 1)
                return false;
            if (m == 2)
                granted = true;
        }
    }
    char buf[1024];
    for (uint32_t i = 0; i < a->patterns.n; i++) {
        const acl_rule *r = &a->patterns.r[i];
        if (!substitute(r->topic, username, client_id, buf, sizeof buf))
            continue;
        int m = check_rule(r, buf, topic, access);
        if (m == 1)
            return false;
        if (m == 2)
            granted = true;
    }
    return granted;
}
