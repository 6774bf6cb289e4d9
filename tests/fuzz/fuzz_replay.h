/*
 * fuzz_replay.h — a main() for fuzz targets built without libFuzzer
 * (-DTM_FUZZ_REPLAY): replays every file given on the command line, and every
 * regular file in each directory given, through LLVMFuzzerTestOneInput, then
 * every prefix of each at a coarse stride (truncation is the classic bug).
 * Include it at the end of a fuzz target, after LLVMFuzzerTestOneInput.
 * Exit status 1 when an argument cannot be read (a missing corpus must fail
 * the test, not pass it).
 */
#ifndef TM_FUZZ_REPLAY_H
#define TM_FUZZ_REPLAY_H
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int tm_replay_one(const char *path)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (f && fstat(fileno(f), &st) == 0 && st.st_size >= 0) {
        len = (size_t)st.st_size;
        buf = malloc(len ? len : 1);
        if (buf && fread(buf, 1, len, f) != len) {
            free(buf);
            buf = NULL;
        }
    }
    if (f) fclose(f);
    if (!buf) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    for (size_t k = 0; k < len; k += 1 + len / 64) LLVMFuzzerTestOneInput(buf, k);
    free(buf);
    return 0;
}

/* Replays argv[1..]; returns the exit status. */
static int tm_replay_main(int argc, char **argv)
{
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *d = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? opendir(argv[i]) : NULL;
        if (!d) {
            errors += tm_replay_one(argv[i]) != 0;
            files++;
            continue;
        }
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (e->d_name[0] == '.' || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            errors += tm_replay_one(p) != 0;
            files++;
        }
        closedir(d);
    }
    printf("replayed %d files, %d errors\n", files, errors);
    return errors || files == 0 ? 1 : 0;
}
#endif
