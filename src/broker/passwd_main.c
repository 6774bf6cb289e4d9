/*
 * passwd_main.c — tmqtt-passwd: create and update password files in
 * Mosquitto's `$7$` format (PBKDF2-HMAC-SHA512), with mosquitto_passwd's
 * flags: -c (create/overwrite), -b (password on the command line), -D
 * (delete a user), -I N (iterations).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "broker/passwd.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: tmqtt-passwd [-c] [-I ITERATIONS] FILE USER        (asks for the password)\n"
            "       tmqtt-passwd -b [-c] [-I ITERATIONS] FILE USER PASSWORD\n"
            "       tmqtt-passwd -D FILE USER\n"
            "  -c  create FILE, replacing it if it exists\n"
            "  -I  PBKDF2 iterations (default %d)\n",
            TM_PASSWD_DEFAULT_ITERATIONS);
}

static int read_password(char *buf, size_t cap, const char *prompt)
{
    struct termios old, quiet;
    bool tty = isatty(0) && tcgetattr(0, &old) == 0;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(0, TCSANOW, &quiet);
    }
    char *r = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(0, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    if (!r)
        return -1;
    buf[strcspn(buf, "\r\n")] = 0;
    return 0;
}

int main(int argc, char **argv)
{
    bool create = false, batch = false, del = false;
    unsigned iterations = TM_PASSWD_DEFAULT_ITERATIONS;
    int opt;
    while ((opt = getopt(argc, argv, "+cbDI:")) != -1) {
        char *end;
        unsigned long v;
        switch (opt) {
        case 'c':
            create = true;
            break;
        case 'b':
            batch = true;
            break;
        case 'D':
            del = true;
            break;
        case 'I':
            v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > 100000000) {
                fprintf(stderr, "tmqtt-passwd: bad iteration count\n");
                return 2;
            }
            iterations = (unsigned)v;
            break;
        default:
            usage();
            return 2;
        }
    }
    int i = optind;
    int need = del ? 2 : batch ? 3 : 2;
    if (argc - i != need) {
        usage();
        return 2;
    }
    const char *file = argv[i], *user = argv[i + 1];
    if (!*user || strchr(user, ':')) {
        fprintf(stderr, "tmqtt-passwd: user names may not be empty or contain ':'\n");
        return 2;
    }
    char pass[1024] = "";
    if (!del) {
        if (batch) {
            snprintf(pass, sizeof pass, "%s", argv[i + 2]);
        } else {
            char again[1024];
            if (read_password(pass, sizeof pass, "Password: ") < 0 ||
                (isatty(0) && (read_password(again, sizeof again, "Reenter password: ") < 0 ||
                               strcmp(pass, again) != 0))) {
                fprintf(stderr, "tmqtt-passwd: passwords do not match\n");
                return 1;
            }
        }
    }

    /* Read the existing lines (except USER's), then write the file anew. */
    char **lines = NULL;
    size_t n = 0;
    bool found = false;
    if (!create) {
        FILE *f = fopen(file, "r");
        if (!f && (errno != ENOENT || del)) {
            fprintf(stderr, "tmqtt-passwd: %s: %s\n", file, strerror(errno));
            return 1;
        }
        char line[2048];
        size_t ul = strlen(user);
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, user, ul) == 0 && line[ul] == ':') {
                found = true;
                continue;
            }
            char **nl = realloc(lines, (n + 1) * sizeof *nl);
            if (!nl)
                return 1;
            lines = nl;
            lines[n++] = strdup(line);
        }
        if (f)
            fclose(f);
    }
    if (del && !found) {
        fprintf(stderr, "tmqtt-passwd: user '%s' not found in %s\n", user, file);
        return 1;
    }
    FILE *out = fopen(file, "w");
    if (!out) {
        fprintf(stderr, "tmqtt-passwd: %s: %s\n", file, strerror(errno));
        return 1;
    }
    for (size_t k = 0; k < n; k++) {
        fputs(lines[k], out);
        free(lines[k]);
    }
    free(lines);
    int rc = 0;
    if (!del) {
        uint8_t salt[12], hash[64];
        char salt64[32], hash64[100];
        if (RAND_bytes(salt, sizeof salt) != 1 ||
            tm_passwd_hash(pass, salt, sizeof salt, iterations, hash) < 0) {
            fprintf(stderr, "tmqtt-passwd: hashing failed\n");
            rc = 1;
        } else {
            tm_b64_encode(salt, sizeof salt, salt64);
            tm_b64_encode(hash, sizeof hash, hash64);
            fprintf(out, "%s:$7$%u$%s$%s\n", user, iterations, salt64, hash64);
        }
    }
    if (fclose(out) != 0) {
        fprintf(stderr, "tmqtt-passwd: %s: %s\n", file, strerror(errno));
        rc = 1;
    }
    return rc;
}
