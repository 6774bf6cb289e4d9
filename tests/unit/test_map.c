/*
 * test_map.c — the broker's hash map (src/broker/map.c): SipHash checked
 * against OpenSSL's implementation (EVP_MAC "SIPHASH", both 2-4 and the 1-3
 * the map uses), the map's put/get/del under many keys, keys kept inside
 * their values at an offset (16-byte entries, no key pointer), and the key:
 * two processes' secrets differ, so bucket order is not predictable.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "broker/map.h"
#include "tm_test.h"

static uint64_t ossl_siphash(const uint8_t key[16], const uint8_t *d, size_t n,
                             unsigned c, unsigned dr)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t size = 8;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
        OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_C_ROUNDS, &c),
        OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_D_ROUNDS, &dr),
        OSSL_PARAM_construct_end(),
    };
    uint8_t out[8] = {0};
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, 16, params) && EVP_MAC_update(ctx, d, n) &&
             EVP_MAC_final(ctx, out, &outl, sizeof out);
    TM_CHECK(ok && outl == 8);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | out[i];
    return v;
}

static void test_siphash_matches_openssl(void)
{
    uint8_t key[16], data[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        data[i] = (uint8_t)i;
    uint64_t k[2] = {0, 0};
    for (int i = 7; i >= 0; i--) {
        k[0] = k[0] << 8 | key[i];
        k[1] = k[1] << 8 | key[8 + i];
    }
    /* the reference paper's first vectors: empty input and 15 bytes, SipHash-2-4 */
    TM_CHECK(tm_siphash(k, data, 0, 2, 4) == 0x726fdb47dd0e0e31ULL);
    TM_CHECK(tm_siphash(k, data, 15, 2, 4) == 0xa129ca6149be45e5ULL);
    for (size_t n = 0; n <= 64; n++) {
        TM_CHECK(tm_siphash(k, data, n, 2, 4) == ossl_siphash(key, data, n, 2, 4));
        TM_CHECK(tm_siphash(k, data, n, 1, 3) == ossl_siphash(key, data, n, 1, 3));
    }
    for (int t = 0; t < 200; t++) {   /* random keys and lengths */
        size_t n = (size_t)(t % 64);
        RAND_bytes(key, sizeof key);
        RAND_bytes(data, sizeof data);
        for (int i = 7; i >= 0; i--) {
            k[0] = k[0] << 8 | key[i];
            k[1] = k[1] << 8 | key[8 + i];
        }
        TM_CHECK(tm_siphash(k, data, n, 1, 3) == ossl_siphash(key, data, n, 1, 3));
    }
}

static void test_map_many_keys(void)
{
    enum { N = 5000 };
    static char keys[N][16];
    tm_map m;
    tm_map_init(&m);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "level-%d", i);
        TM_CHECK_EQ(tm_map_put(&m, keys[i], (uint32_t)strlen(keys[i]), &keys[i]), 0);
    }
    TM_CHECK_EQ(m.n, N);
    for (int i = 0; i < N; i++)
        TM_CHECK(tm_map_get(&m, keys[i], (uint32_t)strlen(keys[i])) == &keys[i]);
    for (int i = 0; i < N; i += 2)
        TM_CHECK(tm_map_del(&m, keys[i], (uint32_t)strlen(keys[i])) == &keys[i]);
    for (int i = 0; i < N; i++)
        TM_CHECK((tm_map_get(&m, keys[i], (uint32_t)strlen(keys[i])) != NULL) == (i % 2 == 1));
    tm_map_free(&m);
}

/* Values that hold their key after other fields, as sessions and topic nodes
 * do: found by key, iterated with tm_map_key, replaced, deleted. */
static void test_map_key_inside_value(void)
{
    typedef struct item {
        uint64_t id;
        uint32_t n;
        char key[20];
    } item;
    enum { N = 300 };
    static item it[N], other;
    TM_CHECK_EQ(sizeof(tm_map_ent), 16);
    tm_map m;
    tm_map_init(&m);
    for (int i = 0; i < N; i++) {
        it[i].id = (uint64_t)i;
        snprintf(it[i].key, sizeof it[i].key, "client-%d", i);
        TM_CHECK_EQ(tm_map_put(&m, it[i].key, (uint32_t)strlen(it[i].key), &it[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        item *got = tm_map_get(&m, it[i].key, (uint32_t)strlen(it[i].key));
        TM_CHECK(got == &it[i]);
    }
    TM_CHECK(tm_map_get(&m, "client-", 7) == NULL);
    uint32_t k = 0, seen = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&m, &k))) {
        const item *v = e->val;
        TM_CHECK(tm_map_key(&m, e) == v->key);
        TM_CHECK_EQ(e->klen, strlen(v->key));
        seen++;
    }
    TM_CHECK_EQ(seen, N);
    memcpy(other.key, "client-7", 9);   /* replaces the value of an existing key */
    TM_CHECK_EQ(tm_map_put(&m, other.key, 8, &other), 0);
    TM_CHECK_EQ(m.n, N);
    TM_CHECK(tm_map_get(&m, "client-7", 8) == &other);
    for (int i = 0; i < N; i += 3)
        tm_map_del(&m, it[i].key, (uint32_t)strlen(it[i].key));
    for (int i = 0; i < N; i++) {
        item *got = tm_map_get(&m, it[i].key, (uint32_t)strlen(it[i].key));
        TM_CHECK(i % 3 == 0 ? got == NULL : got == (i == 7 ? &other : &it[i]));
    }
    tm_map_free(&m);
}

static void test_key_changes_hash(void)
{
    uint8_t k1[16] = {1}, k2[16] = {2};
    tm_hash_set_key(k1);
    uint32_t a = tm_hash("sensors", 7);
    tm_hash_set_key(k2);
    uint32_t b = tm_hash("sensors", 7);
    TM_CHECK(a != b);
}

TM_TEST_MAIN(TM_CASE(test_siphash_matches_openssl), TM_CASE(test_map_many_keys),
             TM_CASE(test_map_key_inside_value),
             TM_CASE(test_key_changes_hash))
