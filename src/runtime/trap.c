/*
 * trap.c — turning faults of the module into clean, named traps.
 *
 * wasm2c code traps in two ways: explicitly (unreachable, integer divide by zero,
 * call_indirect type mismatch, ... -> wasm_rt_trap), or, with guard-page bounds
 * checking, by touching the PROT_NONE part of the 8 GiB linear-memory reservation or
 * running off the native stack (SIGSEGV). Both end in tm_trap_hook, which records the
 * call stack and unwinds to the runner (main.c); tm_trap_report then names the trap
 * and the innermost module function found in that stack, using the executable's own
 * ELF symbol table (wasm2c functions are static, so the dynamic symbol table would
 * not have them).
 *
 * Our SIGSEGV/SIGBUS handler replaces wasm-rt's so that a fault *outside* linear
 * memory and outside the stack guard — a bug in the host, not the module — is not
 * misreported as a module trap: it is reported as an internal fault and re-raised
 * with the default action (core dump), never swallowed.
 */
#include <dlfcn.h>
#include <elf.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/host.h"
#include "runtime/trap_hook.h"
#include "wasm-rt-impl.h"

#define TM_TRAP_FRAMES 48

static void *g_frames[TM_TRAP_FRAMES];
static int g_nframes;
static bool g_frames_from_signal;
static tm_host *g_host;
static uintptr_t g_stack_lo, g_stack_hi;
static char g_unlinked[96]; /* "module.field" of an omitted import that was called */

#define TM_MEM_RESERVATION 0x200000000ULL /* wasm-rt-impl.c reserves 8 GiB per memory */

WASM_RT_NO_RETURN void tm_trap_hook(wasm_rt_trap_t code)
{
    if (!g_frames_from_signal) g_nframes = backtrace(g_frames, TM_TRAP_FRAMES);
    WASM_RT_LONGJMP(wasm_rt_jmp_buf, code);
}

_Noreturn void tm_trap_unlinked(tm_host *h, const char *module, const char *field)
{
    (void)h;
    snprintf(g_unlinked, sizeof g_unlinked, "%s.%s", module, field);
    wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

#if WASM_RT_MEMCHECK_SIGNAL_HANDLER
static void write_str(const char *s) { (void)!write(2, s, strlen(s)); }

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    uintptr_t mem = g_host && g_host->mem ? (uintptr_t)g_host->mem->data : 0;
    if (mem && a >= mem && a - mem < TM_MEM_RESERVATION) {
        g_nframes = backtrace(g_frames, TM_TRAP_FRAMES);
        g_frames_from_signal = true;
        wasm_rt_trap(WASM_RT_TRAP_OOB);
    }
    /* Stack overflow: the fault lies in or just below the guard area of our stack. */
    if (g_stack_lo && a < g_stack_lo + 65536 && a + (4u << 20) >= g_stack_lo) {
        g_nframes = backtrace(g_frames, TM_TRAP_FRAMES);
        g_frames_from_signal = true;
        wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
    }
    write_str("tmqtt-wasm: internal fault in the runtime host (not a module trap); aborting\n");
    signal(sig, SIG_DFL);
    /* returning re-executes the faulting instruction with the default action */
}
#endif

void tm_trap_install(tm_host *h)
{
    g_host = h;
    void *warm[2];
    backtrace(warm, 2); /* loads the unwinder now, not inside a signal handler */
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t sz;
        if (pthread_attr_getstack(&attr, &lo, &sz) == 0) {
            g_stack_lo = (uintptr_t)lo;
            g_stack_hi = (uintptr_t)lo + sz;
        }
        pthread_attr_destroy(&attr);
    }
#if WASM_RT_MEMCHECK_SIGNAL_HANDLER
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
#endif
}

/* -- symbolization from the executable's .symtab -------------------------------- */

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    *(uintptr_t *)data = (uintptr_t)info->dlpi_addr;
    return 1; /* the first object is the executable */
}

/* Name of the innermost module function among the recorded frames, into out. */
static bool module_function(char *out, size_t outlen)
{
    uintptr_t bias = 0;
    dl_iterate_phdr(first_object, &bias);
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        close(fd);
        return false;
    }
    size_t size = (size_t)st.st_size;
    const uint8_t *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (img == MAP_FAILED) return false;
    bool found = false;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0 || eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
        goto out;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int pass = 0; pass < 2 && !found; pass++) {
        uint32_t want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
            if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum) continue;
            const Elf64_Shdr *strs = &sh[sh[i].sh_link];
            if (sh[i].sh_offset + sh[i].sh_size > size || strs->sh_offset + strs->sh_size > size) continue;
            const Elf64_Sym *syms = (const Elf64_Sym *)(img + sh[i].sh_offset);
            size_t nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
            const char *names = (const char *)(img + strs->sh_offset);
            for (int f = 0; f < g_nframes && !found; f++) {
                /* Return addresses point after the call; step back into it. */
                uintptr_t pc = (uintptr_t)g_frames[f] - bias - (f > 0 ? 1 : 0);
                for (size_t s = 0; s < nsyms; s++) {
                    if (ELF64_ST_TYPE(syms[s].st_info) != STT_FUNC || syms[s].st_name >= strs->sh_size) continue;
                    if (pc < syms[s].st_value || pc >= syms[s].st_value + syms[s].st_size) continue;
                    const char *n = names + syms[s].st_name;
                    if (strncmp(n, "w2c_", 4) == 0) {
                        size_t l = strcspn(n + 4, "."); /* drop .constprop.0 / .part.0 */
                        snprintf(out, outlen, "%.*s", (int)l, n + 4);
                        found = true;
                    }
                    break;
                }
            }
        }
    }
out:
    munmap((void *)img, size);
    return found;
}

void tm_trap_report(int trap_code)
{
    const char *what;
    switch (trap_code) {
    case WASM_RT_TRAP_OOB: what = "out of bounds memory or table access"; break;
    case WASM_RT_TRAP_INT_OVERFLOW: what = "integer overflow"; break;
    case WASM_RT_TRAP_DIV_BY_ZERO: what = "integer divide by zero"; break;
    case WASM_RT_TRAP_INVALID_CONVERSION: what = "invalid conversion to integer"; break;
    case WASM_RT_TRAP_UNREACHABLE: what = "unreachable executed"; break;
    case WASM_RT_TRAP_CALL_INDIRECT: what = "indirect call type mismatch or null/out-of-range table entry"; break;
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: what = "uncaught exception"; break;
#if !WASM_RT_MERGED_OOB_AND_EXHAUSTION_TRAPS
    case WASM_RT_TRAP_EXHAUSTION: what = "call stack exhausted"; break;
#endif
    default: what = "unknown trap"; break;
    }
    char fn[256], unl[200];
    if (g_unlinked[0]) {
        /* WAMR's words for the same event: "failed to call unlinked import function". */
        snprintf(unl, sizeof unl, "call to unlinked import %s (left out by --omit-import)", g_unlinked);
        what = unl;
        g_unlinked[0] = 0;
    }
    if (module_function(fn, sizeof fn))
        fprintf(stderr, "tmqtt-wasm: trap: %s in function %s\n", what, fn);
    else
        fprintf(stderr, "tmqtt-wasm: trap: %s (function unknown: executable has no symbol table)\n", what);
    g_frames_from_signal = false;
    g_nframes = 0;
}
