/*
 * collateral_fetch.c — HTTPS requests and cache directory of `tmqtt-attest
 * collateral fetch` (see collateral_fetch.h and docs/collateral.md).
 *
 * Requests (Intel PCS API v4; a PCCS serves the same paths):
 *   GET {url}/{sgx|tdx}/certification/v4/tcb?fmspc=FMSPC   header TCB-Info-Issuer-Chain
 *   GET {url}/{sgx|tdx}/certification/v4/qe/identity       header SGX-Enclave-Identity-Issuer-Chain
 *   GET {url}/sgx/certification/v4/pckcrl?ca=CA&encoding=der  header SGX-PCK-CRL-Issuer-Chain
 *   GET {url}/sgx/certification/v4/rootcacrl   (PCCS; Intel PCS has none: --root-crl-url)
 * A response counts only with status 200, complete (libcurl checks
 * Content-Length and chunking), within the size limits of collateral_pcs.h,
 * over TLS that verified the server against the system CAs or --cafile.
 *
 * Invariants: the cache directory's lock is held from reading the old file
 * to renaming the new one, so two fetches cannot both pass the rollback check
 * and then land in the wrong order; every path frees what it allocated and
 * removes its temporary file.
 */
#include "attest/fetch/collateral_fetch.h"
#include "attest/attest_int.h"
#include "attest/collateral_pcs.h"
#include "attest/evidence.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CACHE_FILE (16u << 20)

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    uint8_t *body;
    size_t n;
    int too_big;
    const char *hname;    /* header wanted, or NULL */
    const char *hname2;   /* an older name of it, or NULL */
    char *hval;           /* its raw value (malloc'd) */
    size_t hlen;
    int hbad;             /* the header came twice, or too long */
} resp;

static void resp_free(resp *r)
{
    free(r->body);
    free(r->hval);
    r->body = NULL;
    r->hval = NULL;
    r->n = r->hlen = 0;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    resp *r = ud;
    size_t n = sz * nm;
    if (n > TM_PCS_MAX_BODY - r->n) {
        r->too_big = 1;
        return 0; /* aborts the transfer */
    }
    uint8_t *nb = realloc(r->body, r->n + n + 1);
    if (!nb) return 0;
    memcpy(nb + r->n, p, n);
    r->body = nb;
    r->n += n;
    r->body[r->n] = 0;
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    resp *r = ud;
    size_t n = sz * nm;
    const char *v;
    size_t vl;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response (after 1xx): forget headers */
        free(r->hval);
        r->hval = NULL;
        r->hlen = 0;
        return n;
    }
    if ((r->hname && tm_pcs_header_match(p, n, r->hname, &v, &vl)) ||
        (r->hname2 && tm_pcs_header_match(p, n, r->hname2, &v, &vl))) {
        if (r->hval || vl > TM_PCS_MAX_HEADER) { /* ambiguous or oversized: refuse */
            r->hbad = 1;
            return 0;
        }
        if (!(r->hval = malloc(vl + 1))) return 0;
        memcpy(r->hval, v, vl);
        r->hval[vl] = 0;
        r->hlen = vl;
    }
    return n;
}

/* Printable start of a body, for error messages. */
static void snippet(const uint8_t *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap && i < 160; i++) out[o++] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '.';
    out[o] = 0;
}

static int http_get(CURL *h, const char *url, long timeout, resp *r, char *reason, size_t cap)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (r->too_big)
            tm_reasonf(reason, cap, "GET %s: response larger than %u bytes", url, TM_PCS_MAX_BODY);
        else if (r->hbad)
            tm_reasonf(reason, cap, "GET %s: %s header repeated or longer than %u bytes", url, r->hname,
                       TM_PCS_MAX_HEADER);
        else
            tm_reasonf(reason, cap, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        char s[170];
        snippet(r->body, r->n, s, sizeof s);
        tm_reasonf(reason, cap, "GET %s: HTTP status %ld%s%s", url, status, s[0] ? ": " : "", s);
        return -1;
    }
    return 0;
}

/* The response's issuer chain, percent-decoded (malloc'd). */
static char *issuer_chain(const resp *r, const char *url, size_t *len, char *reason, size_t cap)
{
    if (!r->hval) {
        tm_reasonf(reason, cap, "GET %s: response has no %s header", url, r->hname);
        return NULL;
    }
    char why[256];
    char *pem = tm_pcs_url_decode(r->hval, r->hlen, len, why, sizeof why);
    if (!pem) tm_reasonf(reason, cap, "GET %s: %s", url, why);
    return pem;
}

/* ----------------------------------------------------------- the fetch */

typedef struct {
    resp tcb, qe, pckcrl, rootcrl;
    tm_pcs_signed_body tcb_doc, qe_doc;
    char *tcb_chain, *qe_chain, *crl_chain;
    uint8_t *pck_der, *root_der;
    size_t pck_len, root_len;
    tm_pcs_dates tcb_dates, qe_dates;
} fetched;

static void fetched_free(fetched *f)
{
    resp_free(&f->tcb);
    resp_free(&f->qe);
    resp_free(&f->pckcrl);
    resp_free(&f->rootcrl);
    free(f->tcb_chain);
    free(f->qe_chain);
    free(f->crl_chain);
    free(f->pck_der);
    free(f->root_der);
}

/* GET a signed document, check its structure, dates and signature. */
static int get_doc(CURL *h, const tm_cfetch_opts *o, const char *url, int doc, resp *r, tm_pcs_signed_body *sb,
                   char **chain, tm_pcs_dates *dates, char *reason, size_t cap)
{
    const char *what = doc == TM_PCS_TCB_INFO ? "TCB info" : "QE identity";
    char why[512];
    size_t cl;
    if (http_get(h, url, o->timeout_s, r, reason, cap)) return -1;
    if (!(*chain = issuer_chain(r, url, &cl, reason, cap))) return -1;
    if (tm_pcs_parse_signed_body(doc, (const char *)r->body, r->n, sb, why, sizeof why) ||
        tm_pcs_check_doc(doc, o->format, o->fmspc, sb->doc, sb->doc_len, o->at, dates, why, sizeof why) ||
        tm_pcs_verify_doc(sb->doc, sb->doc_len, sb->sig, *chain, cl, o->at, what, why, sizeof why)) {
        tm_reasonf(reason, cap, "GET %s: %s", url, why);
        return -1;
    }
    return 0;
}

/* GET a CRL and check it (with its issuer chain header, or the pinned root). */
static int get_crl(CURL *h, const tm_cfetch_opts *o, const char *url, const char *what, resp *r, char **chain,
                   uint8_t **der, size_t *len, char *reason, size_t cap)
{
    char why[512];
    size_t cl = 0;
    if (http_get(h, url, o->timeout_s, r, reason, cap)) return -1;
    if (r->hname && !(*chain = issuer_chain(r, url, &cl, reason, cap))) return -1;
    if (tm_pcs_parse_crl(r->body, r->n, der, len, why, sizeof why) ||
        tm_pcs_verify_crl(*der, *len, r->hname ? *chain : NULL, cl, r->hname ? o->ca : 0, o->at, what, why,
                          sizeof why)) {
        tm_reasonf(reason, cap, "GET %s: %s", url, why);
        return -1;
    }
    return 0;
}

static int fetch_all(const tm_cfetch_opts *o, const char *base, fetched *f, char *reason, size_t cap)
{
    CURL *h = curl_easy_init();
    if (!h) {
        tm_reasonf(reason, cap, "cannot initialise libcurl");
        return -1;
    }
    /* https only, verified, no redirects. */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (o->cafile) { /* replaces the system CAs, bundle and directory */
        curl_easy_setopt(h, CURLOPT_CAINFO, o->cafile);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tmqtt-attest");
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TM_PCS_MAX_BODY);

    const char *tee = o->format == TM_FMT_TDX_DCAP ? "tdx" : "sgx";
    char fm[13], url[4096 + 256];
    snprintf(fm, sizeof fm, "%02X%02X%02X%02X%02X%02X", o->fmspc[0], o->fmspc[1], o->fmspc[2], o->fmspc[3],
             o->fmspc[4], o->fmspc[5]);
    int rc = -1;
    f->tcb.hname = "TCB-Info-Issuer-Chain";
    f->tcb.hname2 = "SGX-TCB-Info-Issuer-Chain"; /* API v3's name, still sent by some PCCS */
    snprintf(url, sizeof url, "%s/%s/certification/v4/tcb?fmspc=%s", base, tee, fm);
    if (get_doc(h, o, url, TM_PCS_TCB_INFO, &f->tcb, &f->tcb_doc, &f->tcb_chain, &f->tcb_dates, reason, cap))
        goto out;
    f->qe.hname = "SGX-Enclave-Identity-Issuer-Chain";
    snprintf(url, sizeof url, "%s/%s/certification/v4/qe/identity", base, tee);
    if (get_doc(h, o, url, TM_PCS_QE_IDENTITY, &f->qe, &f->qe_doc, &f->qe_chain, &f->qe_dates, reason, cap))
        goto out;
    f->pckcrl.hname = "SGX-PCK-CRL-Issuer-Chain";
    snprintf(url, sizeof url, "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", base, tm_pcs_ca_name(o->ca));
    if (get_crl(h, o, url, "PCK CRL", &f->pckcrl, &f->crl_chain, &f->pck_der, &f->pck_len, reason, cap)) goto out;
    if (o->root_crl_url) snprintf(url, sizeof url, "%s", o->root_crl_url);
    else snprintf(url, sizeof url, "%s/sgx/certification/v4/rootcacrl", base);
    if (get_crl(h, o, url, "root CA CRL", &f->rootcrl, NULL, &f->root_der, &f->root_len, reason, cap)) goto out;
    rc = 0;
out:
    curl_easy_cleanup(h);
    return rc;
}

/* ---------------------------------------------------------------- cache */

static int mkdir_p(const char *dir, char *reason, size_t cap)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        tm_reasonf(reason, cap, "cache directory name too long");
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                tm_reasonf(reason, cap, "cannot create %s: %s", p, strerror(errno));
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        tm_reasonf(reason, cap, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}

/* Whole file into a malloc'd buffer; NULL with errno (ENOENT when absent). */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    ssize_t r;
    while (b && (r = read(fd, b + n, cap - n)) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            free(b);
            b = NULL;
            break;
        }
        n += (size_t)r;
        if (n == cap) {
            char *nb = cap < MAX_CACHE_FILE ? realloc(b, cap * 2 + 1) : NULL;
            if (!nb) { free(b); b = NULL; errno = EFBIG; break; }
            b = nb;
            cap *= 2;
        }
    }
    int e = errno;
    close(fd);
    errno = e;
    if (b) {
        b[n] = 0;
        *len = n;
    }
    return b;
}

static int write_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Temporary file in `dir`, fsync, rename over `path`, fsync of `dir`. */
static int atomic_replace(const char *dir, const char *name, const char *path, const char *text, size_t len,
                          char *reason, size_t cap)
{
    char tmp[4096 + 64];
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tm_reasonf(reason, cap, "cannot create a temporary file in %s: %s", dir, strerror(errno));
        return -1;
    }
    if (fchmod(fd, 0644) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        tm_reasonf(reason, cap, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        tm_reasonf(reason, cap, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        tm_reasonf(reason, cap, "cannot sync directory %s: %s", dir, strerror(errno));
        if (dfd >= 0) close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

/* Under the directory lock: rollback rule, then atomic replacement. */
static int store(const char *dir, const char *name, const char *text, size_t len, char *warn, size_t warncap,
                 char *reason, size_t cap)
{
    char path[4096 + 64], lock[4096 + 64], why[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(lock, sizeof lock, "%s/.tmqtt-collateral.lock", dir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
        tm_reasonf(reason, cap, "cannot lock %s: %s", lock, strerror(errno));
        if (lfd >= 0) close(lfd);
        return TM_CFETCH_ERROR;
    }
    int rc = TM_CFETCH_ERROR;
    size_t olen = 0;
    char *old = read_file(path, &olen);
    if (!old && errno != ENOENT) {
        tm_reasonf(reason, cap, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (old && olen == len && memcmp(old, text, len) == 0) {
        rc = TM_CFETCH_UNCHANGED;
        goto out;
    }
    tm_pcs_cache_dates od, nd;
    if (old && tm_pcs_read_cache_dates(old, olen, &od, why, sizeof why) != 0) {
        tm_reasonf(warn, warncap, "the cached %s was unreadable (%s) and is replaced", path, why);
    } else if (old) {
        if (tm_pcs_read_cache_dates(text, len, &nd, why, sizeof why) != 0) {
            tm_reasonf(reason, cap, "internal error: new cache file unreadable: %s", why);
            goto out;
        }
        if (tm_pcs_rollback_check(&od, &nd, why, sizeof why) != 0) {
            tm_reasonf(reason, cap, "%s: %s", path, why);
            goto out;
        }
    }
    if (atomic_replace(dir, name, path, text, len, reason, cap) == 0) rc = TM_CFETCH_UPDATED;
out:
    free(old);
    close(lfd); /* releases the lock */
    return rc;
}

/* https:// base without a trailing '/', query or fragment. */
static int check_base(const char *url, char *out, size_t outcap, char *reason, size_t cap)
{
    if (!url || strncasecmp(url, "https://", 8) != 0 || !url[8]) {
        tm_reasonf(reason, cap, "--url must be an https:// URL (collateral is only fetched over verified TLS)");
        return -1;
    }
    if (strpbrk(url, "?#") || strlen(url) >= outcap) {
        tm_reasonf(reason, cap, "--url must be a base URL without query or fragment");
        return -1;
    }
    snprintf(out, outcap, "%s", url);
    size_t n = strlen(out);
    while (n > 8 && out[n - 1] == '/') out[--n] = 0;
    return 0;
}

int tm_cfetch_run(const tm_cfetch_opts *o, tm_cfetch_info *info, char *warn, size_t warncap, char *reason,
                  size_t cap)
{
    char base[4096], name[64];
    if (warn && warncap) warn[0] = 0;
    memset(info, 0, sizeof *info);
    if (check_base(o->url, base, sizeof base, reason, cap)) return TM_CFETCH_ERROR;
    if (o->root_crl_url && strncasecmp(o->root_crl_url, "https://", 8) != 0) {
        tm_reasonf(reason, cap, "--root-crl-url must be an https:// URL");
        return TM_CFETCH_ERROR;
    }
    if (tm_pcs_cache_name(o->format, o->fmspc, name, sizeof name) || !tm_pcs_ca_name(o->ca)) {
        tm_reasonf(reason, cap, "format must be sgx-dcap or tdx-dcap and the PCK CA processor or platform");
        return TM_CFETCH_ERROR;
    }
    const char *dir = o->cache_dir ? o->cache_dir : TM_CFETCH_DEFAULT_CACHE;
    tm_cfetch_opts opt = *o;
    if (opt.timeout_s <= 0) opt.timeout_s = TM_CFETCH_DEFAULT_TIMEOUT;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tm_reasonf(reason, cap, "cannot initialise libcurl");
        return TM_CFETCH_ERROR;
    }
    fetched f;
    memset(&f, 0, sizeof f);
    char *json = NULL;
    size_t jl = 0;
    int rc = TM_CFETCH_ERROR;
    if (fetch_all(&opt, base, &f, reason, cap)) goto out;
    tm_pcs_collateral c = {
        .tcb_info = f.tcb_doc.doc, .tcb_info_len = f.tcb_doc.doc_len, .tcb_info_sig = f.tcb_doc.sig,
        .tcb_info_chain = f.tcb_chain,
        .qe_identity = f.qe_doc.doc, .qe_identity_len = f.qe_doc.doc_len, .qe_identity_sig = f.qe_doc.sig,
        .qe_identity_chain = f.qe_chain,
        .pck_crl = f.pck_der, .pck_crl_len = f.pck_len, .pck_crl_chain = f.crl_chain,
        .root_ca_crl = f.root_der, .root_ca_crl_len = f.root_len,
    };
    if (!(json = tm_pcs_cache_json(&c, &jl))) {
        tm_reasonf(reason, cap, "out of memory");
        goto out;
    }
    if (mkdir_p(dir, reason, cap)) goto out;
    rc = store(dir, name, json, jl, warn, warncap, reason, cap);
    if (rc != TM_CFETCH_ERROR) {
        snprintf(info->path, sizeof info->path, "%s/%s", dir, name);
        info->tcb_issue = f.tcb_dates.issue_date;
        info->tcb_next = f.tcb_dates.next_update;
        info->qe_issue = f.qe_dates.issue_date;
        info->qe_next = f.qe_dates.next_update;
    }
out:
    free(json);
    fetched_free(&f);
    curl_global_cleanup();
    return rc;
}
