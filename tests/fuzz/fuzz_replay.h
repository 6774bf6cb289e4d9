/*
 * fuzz_replay.h — main() for running a libFuzzer target as a plain program
 * (-DTM_FUZZ_REPLAY, builds without clang's libFuzzer): replays every file
 * and every file of every directory given on the command line, each also as
 * prefixes at a coarse stride (truncation is the classic parser bug), then
 * the target's hand-made hostile inputs TM_FUZZ_EXTRA_INPUTS (a brace list of
 * strings, optional). Included at the end of a fuzz target's source.
 */
#ifndef TM_FUZZ_REPLAY_H
#define TM_FUZZ_REPLAY_H
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static int replay_file(const char *path)
{
    size_t n = 0;
    uint8_t *b = tm_fuzz_read(path, &n);
    if (!b) { perror(path); return -1; }
    LLVMFuzzerTestOneInput(b, n);
    for (size_t k = 0; k < n; k += 1 + n / 64) LLVMFuzzerTestOneInput(b, k);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { perror(argv[i]); bad++; continue; }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                    bad += replay_file(p) != 0;
                    files++;
                }
            }
            if (d) closedir(d);
        } else {
            bad += replay_file(argv[i]) != 0;
            files++;
        }
    }
#ifdef TM_FUZZ_EXTRA_INPUTS
    static const char *extra[] = TM_FUZZ_EXTRA_INPUTS;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)extra[i], strlen(extra[i]));
#endif
    printf("replayed %d files, %d errors\n", files, bad);
    return bad || files == 0 ? 1 : 0;
}
#endif
