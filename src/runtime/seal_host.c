/*
 * seal_host.c — the `tmqtt_seal` import module: the broker's store is sealed
 * by the host, which holds the key (src/broker/seal.c, the same code as the
 * native broker), so the module never sees key material.
 *
 *   mode(out_ptr, out_cap, out_len_ptr) -> errno
 *       the key source's kind ("keyfile", "gramine-mrenclave", ...);
 *       ENOTSUP when tmqtt-wasm was started without --seal.
 *   file_key(store_id_ptr, file_id_ptr, handle_out_ptr) -> errno
 *       derives a file key (16-byte ids); the handle is an index into the
 *       host's own table, meaningless outside it.
 *   release(handle) -> errno
 *   crypt(handle, encrypt, seq u64, aad_ptr, aad_len, buf_ptr, len, tag_ptr) -> errno
 *       AES-256-GCM in place over buf (len bytes) with a 16-byte tag;
 *       EBADMSG when decryption finds the frame not authentic.
 * Every address range is checked against the module's memory before use;
 * a bad handle or range is EINVAL / EFAULT, never a host fault.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker/seal.h"
#include "runtime/host.h"
#include "runtime/host_imports.h"
#include "runtime/wasi_abi.h"


/* --omit-import tmqtt_seal: every function traps, as an unlinked import does */
#define OMITTED(field)                                                                  \
    if (h->omit & TM_IMPORT_SEAL)                                                       \
    tm_trap_unlinked(h, "tmqtt_seal", field)

u32 TM_SEAL(mode)(TM_SEAL_CTX, u32 out, u32 out_cap, u32 out_len_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("mode");
    if (!h->seal)
        return TM_ENOTSUP;
    const char *m = tm_seal_mode(h->seal);
    uint32_t n = (uint32_t)strlen(m);
    if (n > out_cap || !tm_mem_ok(h, out, n) || !tm_mem_ok(h, out_len_out, 4))
        return TM_EFAULT;
    memcpy(tm_mem(h, out), m, n);
    tm_st32(h, out_len_out, n);
    return 0;
}

u32 TM_SEAL(file_key)(TM_SEAL_CTX, u32 store_id, u32 file_id, u32 handle_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("file_key");
    if (!h->seal)
        return TM_ENOTSUP;
    if (!tm_mem_ok(h, store_id, 16) || !tm_mem_ok(h, file_id, 16) || !tm_mem_ok(h, handle_out, 4))
        return TM_EFAULT;
    uint32_t slot = 0;
    while (slot < TM_SEAL_FILES && h->seal_files[slot])
        slot++;
    if (slot == TM_SEAL_FILES)
        return TM_ENOMEM;
    char err[200];
    uint8_t sid[16], fid[16];
    memcpy(sid, tm_mem(h, store_id), 16);
    memcpy(fid, tm_mem(h, file_id), 16);
    h->seal_files[slot] = tm_seal_file_new(h->seal, sid, fid, err, sizeof err);
    if (!h->seal_files[slot]) {
        fprintf(stderr, "tmqtt-wasm: seal: %s\n", err);
        return TM_EINVAL;
    }
    tm_st32(h, handle_out, slot + 1);
    return 0;
}

static tm_seal_file *file_of(tm_host *h, u32 handle)
{
    return handle >= 1 && handle <= TM_SEAL_FILES ? h->seal_files[handle - 1] : NULL;
}

u32 TM_SEAL(release)(TM_SEAL_CTX, u32 handle)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("release");
    tm_seal_file *f = file_of(h, handle);
    if (!f)
        return TM_EINVAL;
    tm_seal_file_free(f);
    h->seal_files[handle - 1] = NULL;
    return 0;
}

u32 TM_SEAL(crypt)(TM_SEAL_CTX, u32 handle, u32 encrypt, u64 seq, u32 aad, u32 aad_len, u32 buf,
                   u32 len, u32 tag)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("crypt");
    tm_seal_file *f = file_of(h, handle);
    if (!f)
        return TM_EINVAL;
    if (!tm_mem_ok(h, aad, aad_len) || !tm_mem_ok(h, buf, len) || !tm_mem_ok(h, tag, TM_SEAL_TAG))
        return TM_EFAULT;
    /* the module's memory is the buffer: encryption in place, as natively */
    int rc = encrypt ? tm_seal_encrypt(f, seq, tm_mem(h, aad), aad_len, tm_mem(h, buf), len,
                                       tm_mem(h, tag))
                     : tm_seal_decrypt(f, seq, tm_mem(h, aad), aad_len, tm_mem(h, buf), len,
                                       tm_mem(h, tag));
    return rc == 0 ? 0 : TM_EBADMSG;
}
