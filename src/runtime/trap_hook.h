/*
 * trap_hook.h — force-included when compiling wabt's wasm-rt-impl.c, which is built
 * with -DWASM_RT_TRAP_HANDLER=tm_trap_hook: every trap (explicit ones from generated
 * code, and out-of-bounds / stack exhaustion turned into traps by the signal handler)
 * passes through tm_trap_hook (trap.c), which records where it happened before
 * unwinding to the runner. It never returns.
 */
#ifndef TM_RUNTIME_TRAP_HOOK_H
#define TM_RUNTIME_TRAP_HOOK_H
#include <wasm-rt.h>
WASM_RT_NO_RETURN void tm_trap_hook(wasm_rt_trap_t code);
#endif
