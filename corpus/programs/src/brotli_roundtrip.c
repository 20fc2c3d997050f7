/* brotli_roundtrip: one input compressed with BrotliEncoderCompress (one
 * shot) and decompressed with the streaming decoder in small pieces, then
 * compared with the input.
 *
 * Allocation, as the library does it:
 * - encoder, default build (BROTLI_ENCODER_EXIT_ON_OOM, defined by
 *   enc/memory.h when neither macro is given): BrotliAllocate calls
 *   exit(EXIT_FAILURE) when malloc returns NULL -- exit code 1, nothing
 *   printed by the library;
 * - encoder built with -DBROTLI_ENCODER_CLEANUP_ON_OOM: BrotliAllocate marks
 *   the memory manager OOM and returns NULL, the encoder unwinds and frees what
 *   it tracked, BrotliEncoderCompressStream fails, and BrotliEncoderCompress
 *   falls back to an uncompressed brotli stream (still TRUE, still valid: it
 *   decodes to the input) when the output buffer holds
 *   BrotliEncoderMaxCompressedSize bytes, as here;
 * - in both builds BrotliEncoderCompress returns FALSE when the encoder state
 *   itself cannot be allocated, and the decoder reports an allocation failure
 *   as BROTLI_DECODER_RESULT_ERROR with an _ERROR_ALLOC_* code.
 * Every reported failure is printed on stderr and the program exits 1.
 *
 * stdout holds only what a correct run cannot change: the fallback changes
 * the compressed size, which is printed with -v only.  A mismatch exits 3. */
#include "common.h"
#include <brotli/decode.h>
#include <brotli/encode.h>

#define LGWIN 18
#define PIECE 61

static int decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out) {
    BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    BrotliDecoderResult r = BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT;
    size_t avail_in = 0, avail_out = cap, total = 0, fed = 0;
    const uint8_t *next_in = src;
    uint8_t *next_out = dst;
    if (!s) return fail("BrotliDecoderCreateInstance", "out of memory");
    while (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && fed < n) {
        size_t k = n - fed < PIECE ? n - fed : PIECE;
        avail_in += k;
        fed += k;
        r = BrotliDecoderDecompressStream(s, &avail_in, &next_in, &avail_out, &next_out, &total);
    }
    if (r == BROTLI_DECODER_RESULT_ERROR) {
        const char *why = BrotliDecoderErrorString(BrotliDecoderGetErrorCode(s));
        BrotliDecoderDestroyInstance(s);
        return fail("BrotliDecoderDecompressStream", why);
    }
    BrotliDecoderDestroyInstance(s);
    if (r != BROTLI_DECODER_RESULT_SUCCESS) {
        return fail("BrotliDecoderDecompressStream",
                    r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT ? "output larger than input"
                                                                  : "truncated stream");
    }
    *out = total;
    return 0;
}

static int roundtrip(const uint8_t *src, size_t n, const options *o) {
    size_t cap = BrotliEncoderMaxCompressedSize(n), clen, dlen = 0;
    uint8_t *enc, *back;
    int rc;
    if (!cap) return fail("BrotliEncoderMaxCompressedSize", "input too large");
    enc = xmalloc(cap, "compression buffer");
    back = enc ? xmalloc(n, "decompression buffer") : NULL;
    if (!back) {
        free(enc);
        return 1;
    }
    clen = cap;
    if (!BrotliEncoderCompress(o->level, LGWIN, BROTLI_MODE_GENERIC, n, src, &clen, enc)) {
        rc = fail("BrotliEncoderCompress", "failed");
    } else {
        if (o->verbose) printf("compressed: %zu -> %zu bytes\n", n, clen);
        rc = decode(enc, clen, back, n, &dlen);
    }
    if (!rc && (dlen != n || memcmp(src, back, n))) {
        fprintf(stderr, "%s: roundtrip mismatch\n", prog_name);
        rc = 3;
    }
    if (!rc) printf("brotli (quality %d, lgwin %d): roundtrip ok\n", o->level, LGWIN);
    free(back);
    free(enc);
    return rc;
}

int main(int argc, char **argv) {
    options o = {2048, 1, 5, 0, NULL};
    unsigned char *src = NULL;
    size_t n = 0;
    uint32_t v = BrotliEncoderVersion();
    int rc;
    prog_name = "brotli";
    if ((rc = parse_options(argc, argv, &o))) return rc;
    if (o.level > BROTLI_MAX_QUALITY) return usage();
    if ((rc = load_input(&o, &src, &n))) return rc;
    print_input(src, n);
    printf("brotli %u.%u.%u\n", v >> 24, (v >> 12) & 0xfff, v & 0xfff);
    rc = roundtrip(src, n, &o);
    free(src);
    return rc;
}
