/*
 * fuzz_atls.c — libFuzzer target for the attested TLS extension parsers
 * (src/attest/atls.c): AttestationRequest and AttestationEvidence, the bytes
 * a peer controls in ClientHello, CertificateRequest, EncryptedExtensions and
 * Certificate. The first input byte picks the parser; the rest is the
 * extension body. Properties checked: no crash or sanitizer report; a body
 * that decodes re-encodes to exactly the same bytes; decoded evidence is then
 * handed to tm_verify (as the client would, with a binding that cannot match)
 * and must be refused, never accepted.
 *
 * Built with -DTM_FUZZ_REPLAY (plain gcc build) it is a program replaying
 * corpus files and directories given on the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/atls.h"
#include "attest/verify.h"

#define REQUIRE(c)                                                              \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "fuzz_atls: %s:%d: %s\n", __FILE__, __LINE__, #c);   \
            abort();                                                            \
        }                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    static uint8_t out[65536];
    if (data[0] & 1) {
        tm_atls_answer a;
        int r = tm_atls_answer_decode(b, n, &a);
        if (r == TM_ATLS_DEC_MALFORMED)
            return 0;
        REQUIRE(a.evidence_len >= 1 && a.evidence_len <= TM_ATLS_MAX_EVIDENCE);
        REQUIRE(a.evidence == b + 5 && 5 + a.evidence_len == n);
        if (r == TM_ATLS_DEC_OK) {
            size_t m = tm_atls_answer_encode(a.format, a.evidence, a.evidence_len, out, sizeof out);
            REQUIRE(m == n && memcmp(out, b, n) == 0);
            uint8_t rd[64];
            memset(rd, 0xA5, sizeof rd);
            tm_claims c;
            char why[256];
            int v = tm_verify(a.format, a.evidence, a.evidence_len, rd, NULL, 1700000000, &c,
                              why, sizeof why);
            REQUIRE(v != TM_VERIFY_OK);
        }
    } else {
        tm_atls_request r;
        int rc = tm_atls_request_decode(b, n, &r);
        if (rc != TM_ATLS_DEC_OK)
            return 0;
        REQUIRE(r.n_formats >= 1 && r.n_formats <= TM_ATLS_MAX_FORMATS);
        size_t m = tm_atls_request_encode(&r, out, sizeof out);
        REQUIRE(m == n && memcmp(out, b, n) == 0);
    }
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_atls: cannot open %s\n", path);
        return 1;
    }
    static uint8_t buf[1 << 17];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, len);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_atls: no such file %s\n", argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            errors += replay_file(argv[i]);
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            errors += replay_file(path);
            runs++;
        }
        if (d)
            closedir(d);
    }
    printf("replayed %d inputs, %d errors\n", runs, errors);
    return errors || runs == 0;
}
#endif
