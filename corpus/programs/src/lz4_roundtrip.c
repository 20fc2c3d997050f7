/* lz4_roundtrip: LZ4's block, HC and frame APIs on one input, each
 * compressed and decompressed again and compared with the input.
 *
 * Allocation: the block API (LZ4_HEAPMODE 0) works on the stack; LZ4HC
 * (LZ4HC_HEAPMODE 1) mallocs its state and returns 0 when it cannot; the
 * frame API mallocs contexts and buffers and returns an error code whose name
 * (LZ4F_getErrorName) says "ERROR_allocation_failed".  Every failure is
 * printed on stderr and the program exits 1; a mismatch exits 3. */
#include "common.h"
#include "lz4.h"
#include "lz4frame.h"
#include "lz4hc.h"

#define CHUNK 1000

static int check_same(const char *what, const unsigned char *a, size_t an,
                      const unsigned char *b, size_t bn) {
    if (an != bn || memcmp(a, b, an)) {
        fprintf(stderr, "%s: %s: roundtrip mismatch\n", prog_name, what);
        return 3;
    }
    return 0;
}

static int block(const unsigned char *src, size_t n, unsigned char *tmp, size_t bound,
                 unsigned char *back) {
    int c = LZ4_compress_default((const char *)src, (char *)tmp, (int)n, (int)bound);
    int d;
    if (c <= 0) return fail("LZ4_compress_default", "failed");
    d = LZ4_decompress_safe((const char *)tmp, (char *)back, c, (int)n);
    if (d < 0) return fail("LZ4_decompress_safe", "corrupt input");
    printf("lz4 block: %zu -> %d bytes, roundtrip ", n, c);
    if (check_same("lz4 block", src, n, back, (size_t)d)) return 3;
    printf("ok\n");
    return 0;
}

static int hc(const unsigned char *src, size_t n, unsigned char *tmp, size_t bound,
              unsigned char *back, int level) {
    /* LZ4_compress_HC mallocs its state: 0 means that (or a too small dst) failed. */
    int c = LZ4_compress_HC((const char *)src, (char *)tmp, (int)n, (int)bound, level);
    int d;
    if (c <= 0) return fail("LZ4_compress_HC", "failed (returned 0)");
    d = LZ4_decompress_safe((const char *)tmp, (char *)back, c, (int)n);
    if (d < 0) return fail("LZ4_decompress_safe", "corrupt input");
    printf("lz4hc block (level %d): %zu -> %d bytes, roundtrip ", level, n, c);
    if (check_same("lz4hc block", src, n, back, (size_t)d)) return 3;
    printf("ok\n");
    return 0;
}

static int lz4f_fail(const char *what, size_t code) {
    return fail(what, LZ4F_getErrorName(code));
}

/* Streams src through a compression context CHUNK bytes at a time. */
static int frame_compress(const unsigned char *src, size_t n, const LZ4F_preferences_t *prefs,
                          unsigned char *dst, size_t cap, size_t *out) {
    LZ4F_cctx *cctx = NULL;
    size_t r = LZ4F_createCompressionContext(&cctx, LZ4F_VERSION);
    size_t pos = 0, len = 0;
    if (LZ4F_isError(r)) return lz4f_fail("LZ4F_createCompressionContext", r);
    r = LZ4F_compressBegin(cctx, dst, cap, prefs);
    if (LZ4F_isError(r)) goto error;
    len = r;
    while (pos < n) {
        size_t step = n - pos < CHUNK ? n - pos : CHUNK;
        r = LZ4F_compressUpdate(cctx, dst + len, cap - len, src + pos, step, NULL);
        if (LZ4F_isError(r)) goto error;
        len += r;
        pos += step;
    }
    r = LZ4F_compressEnd(cctx, dst + len, cap - len, NULL);
    if (LZ4F_isError(r)) goto error;
    len += r;
    LZ4F_freeCompressionContext(cctx);
    *out = len;
    return 0;
error:
    LZ4F_freeCompressionContext(cctx);
    return lz4f_fail("LZ4F_compress", r);
}

/* Feeds the frame to a decompression context in small pieces, so that it
 * buffers internally (its tmpIn/tmpOut allocations). */
static int frame_decompress(const unsigned char *src, size_t n, unsigned char *dst, size_t cap,
                            size_t *out) {
    LZ4F_dctx *dctx = NULL;
    size_t r = LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION);
    size_t pos = 0, len = 0;
    if (LZ4F_isError(r)) return lz4f_fail("LZ4F_createDecompressionContext", r);
    while (pos < n) {
        size_t in = n - pos < 97 ? n - pos : 97;
        size_t room = cap - len;
        r = LZ4F_decompress(dctx, dst + len, &room, src + pos, &in, NULL);
        if (LZ4F_isError(r)) {
            LZ4F_freeDecompressionContext(dctx);
            return lz4f_fail("LZ4F_decompress", r);
        }
        pos += in;
        len += room;
        if (r == 0) break;
    }
    LZ4F_freeDecompressionContext(dctx);
    if (r != 0) return fail("LZ4F_decompress", "truncated frame");
    *out = len;
    return 0;
}

static int frame(const unsigned char *src, size_t n, unsigned char *back, int level) {
    LZ4F_preferences_t prefs;
    size_t cap, clen = 0, dlen = 0;
    unsigned char *dst;
    int rc;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    prefs.compressionLevel = level;
    /* autoFlush: each update emits its block, so the bound is per chunk. */
    prefs.autoFlush = 1;
    cap = LZ4F_HEADER_SIZE_MAX + (n / CHUNK + 1) * LZ4F_compressBound(CHUNK, &prefs) +
          LZ4F_compressBound(0, &prefs);
    dst = xmalloc(cap, "frame buffer");
    if (!dst) return 1;
    rc = frame_compress(src, n, &prefs, dst, cap, &clen);
    if (!rc) rc = frame_decompress(dst, clen, back, n, &dlen);
    free(dst);
    if (rc) return rc;
    printf("lz4 frame (level %d): %zu -> %zu bytes, roundtrip ", level, n, clen);
    if (check_same("lz4 frame", src, n, back, dlen)) return 3;
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    options o = {2048, 1, 9, 0, NULL};
    unsigned char *src = NULL, *tmp = NULL, *back = NULL;
    size_t n = 0, bound;
    int rc;
    prog_name = "lz4";
    if ((rc = parse_options(argc, argv, &o))) return rc;
    if ((rc = load_input(&o, &src, &n))) return rc;
    print_input(src, n);
    printf("lz4 %s\n", LZ4_versionString());
    bound = (size_t)LZ4_compressBound((int)n);
    tmp = xmalloc(bound, "compression buffer");
    back = xmalloc(n, "decompression buffer");
    rc = (!tmp || !back) ? 1 : 0;
    if (!rc) rc = block(src, n, tmp, bound, back);
    if (!rc) rc = hc(src, n, tmp, bound, back, o.level);
    if (!rc) rc = frame(src, n, back, 1);
    if (!rc) rc = frame(src, n, back, o.level);
    free(back);
    free(tmp);
    free(src);
    return rc;
}
