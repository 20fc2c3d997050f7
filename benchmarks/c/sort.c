/* Fill an array from a linear congruential generator, heap-sort it, and
 * return a position-weighted checksum (freestanding: no libc). */

#define CAP 4096

static unsigned data[CAP];

static void sift_down(unsigned *a, int start, int end) {
    int root = start;
    while (2 * root + 1 <= end) {
        int child = 2 * root + 1;
        if (child + 1 <= end && a[child] < a[child + 1])
            child++;
        if (a[root] >= a[child])
            return;
        unsigned t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void heap_sort(unsigned *a, int n) {
    for (int start = (n - 2) / 2; start >= 0; start--)
        sift_down(a, start, n - 1);
    for (int end = n - 1; end > 0; end--) {
        unsigned t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end - 1);
    }
}

/* Sort n (<= 4096) pseudo-random words from seed; 0 if the result is unsorted. */
unsigned sort_checksum(int n, unsigned seed) {
    if (n > CAP)
        n = CAP;
    unsigned x = seed;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = x >> 8;
    }
    heap_sort(data, n);
    unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && data[i - 1] > data[i])
            return 0;
        sum = sum * 31u + data[i] * (unsigned)(i + 1);
    }
    return sum;
}
