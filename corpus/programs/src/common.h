/* common.h: what every corpus program shares -- option parsing, the input
 * (a file, standard input, or deterministic generated text), a checksum for
 * printing, and reporting allocation failure.
 *
 * Invariants: nothing here exits on its own; every failure is reported on
 * stderr as "PROG: what failed" and returned to main(), which exits 1.  The
 * generated input is a function of (size, seed) only, so a run's stdout is a
 * function of its arguments and input file. */
#ifndef CORPUS_COMMON_H
#define CORPUS_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    size_t size;      /* -n: generated input size in bytes */
    uint32_t seed;    /* -s: generator seed */
    int level;        /* -l: compression level (library-specific) */
    int verbose;      /* -v: also print sizes that a fallback may change */
    const char *path; /* FILE operand ("-" = stdin); NULL = generated */
} options;

static const char *prog_name = "prog";

static int fail(const char *what, const char *why) {
    fprintf(stderr, "%s: %s: %s\n", prog_name, what, why);
    return 1;
}

static void *xmalloc(size_t n, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) fprintf(stderr, "%s: %s: out of memory (%zu bytes)\n", prog_name, what, n);
    return p;
}

static int parse_size(const char *s, size_t *out) {
    char *end;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end) return 0;
    *out = (size_t)v;
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: %s [-n SIZE] [-s SEED] [-l LEVEL] [-v] [FILE|-]\n", prog_name);
    return 2;
}

/* Returns 0 on success, else the exit status (2: usage). */
static int parse_options(int argc, char **argv, options *o) {
    int i;
    size_t v;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-v")) {
            o->verbose = 1;
        } else if ((!strcmp(a, "-n") || !strcmp(a, "-s") || !strcmp(a, "-l")) && i + 1 < argc) {
            if (!parse_size(argv[++i], &v)) return usage();
            if (a[1] == 'n') o->size = v;
            else if (a[1] == 's') o->seed = (uint32_t)v;
            else o->level = (int)v;
        } else if (a[0] == '-' && a[1]) {
            return usage();
        } else if (!o->path) {
            o->path = a;
        } else {
            return usage();
        }
    }
    return 0;
}

/* Text-like bytes from a small vocabulary: compressible, but not trivially. */
static void generate(unsigned char *buf, size_t size, uint32_t seed) {
    static const char *const words[16] = {
        "the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog ",
        "memory ", "grow ", "fails ", "and ", "malloc ", "returns ", "NULL ", "\n"};
    uint32_t x = seed ? seed : 0x9e3779b9u;
    size_t i = 0;
    while (i < size) {
        const char *w;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w = words[(x >> 7) & 15];
        while (*w && i < size) buf[i++] = (unsigned char)*w++;
        if ((x & 0xff) == 0 && i < size) buf[i++] = (unsigned char)('0' + (x >> 24) % 10);
    }
}

static int read_all(int fd, const char *name, unsigned char **out, size_t *size) {
    size_t cap = 4096, len = 0;
    unsigned char *buf = xmalloc(cap, "input buffer");
    if (!buf) return 1;
    for (;;) {
        ssize_t r;
        if (len == cap) {
            unsigned char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return fail(name, "out of memory reading input");
            }
            buf = bigger;
            cap *= 2;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0) {
            int e = errno;
            free(buf);
            return fail(name, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    *out = buf;
    *size = len;
    return 0;
}

/* The input: *out is malloc'ed and owned by the caller on success. */
static int load_input(const options *o, unsigned char **out, size_t *size) {
    int fd, rc;
    if (!o->path) {
        unsigned char *buf = xmalloc(o->size, "input buffer");
        if (!buf) return 1;
        generate(buf, o->size, o->seed);
        *out = buf;
        *size = o->size;
        return 0;
    }
    if (!strcmp(o->path, "-")) return read_all(0, "stdin", out, size);
    fd = open(o->path, O_RDONLY);
    if (fd < 0) return fail(o->path, strerror(errno));
    rc = read_all(fd, o->path, out, size);
    close(fd);
    return rc;
}

static uint32_t fnv1a32(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    while (n--) h = (h ^ *p++) * 16777619u;
    return h;
}

static void print_input(const unsigned char *p, size_t n) {
    printf("input: %zu bytes, fnv1a32 %08x\n", n, (unsigned)fnv1a32(p, n));
}

#endif
