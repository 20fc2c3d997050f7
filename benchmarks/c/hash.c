/* Open-addressing hash table (linear probing) of word keys: insert n keys
 * from a generator, then count hits among 2n lookups. */

#define SLOTS 8192 /* power of two, > 2 * max keys */

static unsigned keys[SLOTS];
static unsigned vals[SLOTS];
static unsigned char used[SLOTS];

static unsigned hash32(unsigned x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static void put(unsigned k, unsigned v) {
    unsigned i = hash32(k) & (SLOTS - 1);
    while (used[i] && keys[i] != k)
        i = (i + 1) & (SLOTS - 1);
    used[i] = 1;
    keys[i] = k;
    vals[i] = v;
}

static int get(unsigned k, unsigned *out) {
    unsigned i = hash32(k) & (SLOTS - 1);
    while (used[i]) {
        if (keys[i] == k) {
            *out = vals[i];
            return 1;
        }
        i = (i + 1) & (SLOTS - 1);
    }
    return 0;
}

/* Insert n (<= 4000) keys, look up 2n; returns hits * 65536 + (value sum & 0xffff). */
unsigned hash_bench(int n) {
    if (n > 4000)
        n = 4000;
    for (int i = 0; i < SLOTS; i++)
        used[i] = 0;
    for (int i = 0; i < n; i++)
        put((unsigned)i * 2654435761u, (unsigned)i);
    unsigned hits = 0, sum = 0, v;
    for (int i = 0; i < 2 * n; i++) {
        if (get((unsigned)i * 2654435761u, &v)) {
            hits++;
            sum += v;
        }
    }
    return hits * 65536u + (sum & 0xffffu);
}
