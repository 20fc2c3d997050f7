/* xxhash_digest: XXH32, XXH64, XXH3 (64 and 128 bit, seeded and with a
 * generated secret) of one input, each computed one-shot and again by
 * streaming it in uneven pieces through a heap-allocated state; the two must
 * agree.
 *
 * Allocation: only the streaming states (XXH*_createState, which return NULL
 * when malloc does) and the wrapper's own buffers.  A NULL is reported on
 * stderr and the program exits 1; a streaming/one-shot mismatch exits 3. */
#define XXH_STATIC_LINKING_ONLY
#include "common.h"
#include "xxhash.h"

#define SECRET_SIZE 192

/* Piece lengths cycle through these, so streaming crosses every buffer edge. */
static size_t piece(size_t i) {
    static const size_t lens[5] = {1, 7, 31, 64, 257};
    return lens[i % 5];
}

static int mismatch(const char *what) {
    fprintf(stderr, "%s: %s: streaming digest differs from one-shot\n", prog_name, what);
    return 3;
}

static int oom(const char *what) {
    return fail(what, "out of memory");
}

static int do_xxh32(const unsigned char *p, size_t n, uint32_t seed) {
    XXH32_hash_t one = XXH32(p, n, seed), streamed;
    XXH32_state_t *st = XXH32_createState();
    size_t pos = 0, i = 0;
    if (!st) return oom("XXH32_createState");
    XXH32_reset(st, seed);
    for (; pos < n; i++) {
        size_t k = n - pos < piece(i) ? n - pos : piece(i);
        XXH32_update(st, p + pos, k);
        pos += k;
    }
    streamed = XXH32_digest(st);
    XXH32_freeState(st);
    if (streamed != one) return mismatch("XXH32");
    printf("XXH32    %08x\n", (unsigned)one);
    return 0;
}

static int do_xxh64(const unsigned char *p, size_t n, uint64_t seed) {
    XXH64_hash_t one = XXH64(p, n, seed), streamed;
    XXH64_state_t *st = XXH64_createState();
    size_t pos = 0, i = 0;
    if (!st) return oom("XXH64_createState");
    XXH64_reset(st, seed);
    for (; pos < n; i++) {
        size_t k = n - pos < piece(i) ? n - pos : piece(i);
        XXH64_update(st, p + pos, k);
        pos += k;
    }
    streamed = XXH64_digest(st);
    XXH64_freeState(st);
    if (streamed != one) return mismatch("XXH64");
    printf("XXH64    %016llx\n", (unsigned long long)one);
    return 0;
}

/* XXH3 64 and 128 bit through one state; secret == NULL means seeded. */
static int do_xxh3(const unsigned char *p, size_t n, uint64_t seed, const void *secret,
                   const char *label) {
    XXH64_hash_t one64 = secret ? XXH3_64bits_withSecret(p, n, secret, SECRET_SIZE)
                                : XXH3_64bits_withSeed(p, n, seed);
    XXH128_hash_t one128 = secret ? XXH3_128bits_withSecret(p, n, secret, SECRET_SIZE)
                                  : XXH3_128bits_withSeed(p, n, seed);
    XXH64_hash_t s64;
    XXH128_hash_t s128;
    XXH3_state_t *st = XXH3_createState();
    size_t pos, i;
    if (!st) return oom("XXH3_createState");
    if (secret) XXH3_64bits_reset_withSecret(st, secret, SECRET_SIZE);
    else XXH3_64bits_reset_withSeed(st, seed);
    for (pos = 0, i = 0; pos < n; i++) {
        size_t k = n - pos < piece(i) ? n - pos : piece(i);
        XXH3_64bits_update(st, p + pos, k);
        pos += k;
    }
    s64 = XXH3_64bits_digest(st);
    if (secret) XXH3_128bits_reset_withSecret(st, secret, SECRET_SIZE);
    else XXH3_128bits_reset_withSeed(st, seed);
    for (pos = 0, i = 3; pos < n; i++) {
        size_t k = n - pos < piece(i) ? n - pos : piece(i);
        XXH3_128bits_update(st, p + pos, k);
        pos += k;
    }
    s128 = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    if (s64 != one64) return mismatch("XXH3_64bits");
    if (!XXH128_isEqual(s128, one128)) return mismatch("XXH3_128bits");
    printf("XXH3_64  %016llx (%s)\n", (unsigned long long)one64, label);
    printf("XXH3_128 %016llx%016llx (%s)\n", (unsigned long long)one128.high64,
           (unsigned long long)one128.low64, label);
    return 0;
}

static int digests(const unsigned char *p, size_t n, uint32_t seed) {
    static const char custom[] = "oomfuzz corpus secret seed";
    unsigned char *secret;
    int rc = do_xxh32(p, n, seed);
    if (!rc) rc = do_xxh64(p, n, seed);
    if (!rc) rc = do_xxh3(p, n, seed, NULL, "seeded");
    if (rc) return rc;
    secret = xmalloc(SECRET_SIZE, "secret");
    if (!secret) return 1;
    if (XXH3_generateSecret(secret, SECRET_SIZE, custom, sizeof custom - 1) != XXH_OK) {
        free(secret);
        return fail("XXH3_generateSecret", "failed");
    }
    rc = do_xxh3(p, n, 0, secret, "custom secret");
    free(secret);
    return rc;
}

int main(int argc, char **argv) {
    options o = {4096, 1, 0, 0, NULL};
    unsigned char *src = NULL;
    size_t n = 0;
    int rc;
    prog_name = "xxhash";
    if ((rc = parse_options(argc, argv, &o))) return rc;
    if ((rc = load_input(&o, &src, &n))) return rc;
    print_input(src, n);
    printf("xxHash %u (seed %u)\n", XXH_versionNumber(), (unsigned)o.seed);
    rc = digests(src, n, o.seed);
    free(src);
    return rc;
}
