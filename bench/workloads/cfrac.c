/*
 * cfrac — one thread, many small short-lived objects of mixed sizes: arbitrary-precision
 * arithmetic as in cfrac (continued-fraction factoring), whose bignum library allocates a fresh
 * array for every intermediate result and reallocates results to their exact length.
 *
 * Each product and sum is checked modulo two primes against its operands, so a block handed out
 * twice or overwritten shows up as a wrong residue.
 */
#include "../workload.h"

typedef struct {
    uint32_t n;     /* limbs in use */
    uint32_t pad;
    uint32_t limb[]; /* little-endian base 2^32 */
} big;

static uint64_t ops;

static big *big_new(uint32_t n) {
    big *b = malloc(sizeof(big) + (size_t)n * 4);
    if (!b) wl_fail("out of memory");
    ops++;
    b->n = n;
    return b;
}

static big *big_rand(uint64_t *s, uint32_t n) {
    big *b = big_new(n);
    for (uint32_t i = 0; i < n; i++) b->limb[i] = (uint32_t)wl_rnd(s);
    if (!b->limb[n - 1]) b->limb[n - 1] = 1;
    return b;
}

static uint64_t big_mod(const big *b, uint64_t p) {
    uint64_t r = 0;
    for (uint32_t i = b->n; i-- > 0;) r = (uint64_t)(((unsigned __int128)r << 32 | b->limb[i]) % p);
    return r;
}

/* Drop leading zero limbs and give the memory back, as a bignum library does. */
static big *big_trim(big *b) {
    uint32_t n = b->n;
    while (n > 1 && !b->limb[n - 1]) n--;
    if (n != b->n) {
        b = realloc(b, sizeof(big) + (size_t)n * 4);
        ops++;
        b->n = n;
    }
    return b;
}

static big *big_mul(const big *a, const big *b) {
    uint32_t n = a->n + b->n;
    uint32_t *t = calloc(n, 4); /* scratch, as cfrac's multiply uses */
    ops++;
    if (!t) wl_fail("out of memory");
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            uint64_t v = (uint64_t)a->limb[i] * b->limb[j] + t[i + j] + carry;
            t[i + j] = (uint32_t)v;
            carry = v >> 32;
        }
        t[i + b->n] = (uint32_t)carry;
    }
    big *r = big_new(n);
    memcpy(r->limb, t, (size_t)n * 4);
    free(t);
    return big_trim(r);
}

static big *big_add(const big *a, const big *b) {
    if (a->n < b->n) {
        const big *x = a;
        a = b;
        b = x;
    }
    big *r = big_new(a->n + 1);
    uint64_t carry = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t v = (uint64_t)a->limb[i] + (i < b->n ? b->limb[i] : 0) + carry;
        r->limb[i] = (uint32_t)v;
        carry = v >> 32;
    }
    r->limb[a->n] = (uint32_t)carry;
    return big_trim(r);
}

/* Keep only the low n limbs (cfrac works modulo N). */
static big *big_low(big *b, uint32_t n) {
    if (b->n <= n) return b;
    b = realloc(b, sizeof(big) + (size_t)n * 4);
    ops++;
    b->n = n;
    return big_trim(b);
}

static const uint64_t P1 = 1000003, P2 = 4294967291ULL;

static void check(const big *r, const big *a, const big *b, int mul) {
    for (int k = 0; k < 2; k++) {
        uint64_t p = k ? P2 : P1, ra = big_mod(a, p), rb = big_mod(b, p);
        uint64_t want = mul ? (uint64_t)((unsigned __int128)ra * rb % p) : (ra + rb) % p;
        if (big_mod(r, p) != want) wl_fail("wrong %s residue", mul ? "product" : "sum");
    }
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    enum { POOL = 256 };
    big *pool[POOL];
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < POOL; i++) pool[i] = big_rand(&s, (uint32_t)wl_rnd_range(&s, 1, 24));
    uint64_t iters = wl_scaled(6000000, a.scale);
    double t0 = wl_now();
    for (uint64_t it = 0; it < iters; it++) {
        big *x = pool[wl_rnd(&s) % POOL], *y = pool[wl_rnd(&s) % POOL];
        big *sum = big_add(x, y);
        check(sum, x, y, 0);
        big *prod = big_mul(x, sum);
        check(prod, x, sum, 1);
        free(sum);
        prod = big_low(prod, (uint32_t)wl_rnd_range(&s, 1, 24));
        unsigned k = (unsigned)(wl_rnd(&s) % POOL);
        free(pool[k]);
        pool[k] = prod;
        if (it % 8 == 0) { /* a short-lived string, as cfrac prints factors */
            char *msg = malloc(wl_rnd_range(&s, 8, 120));
            ops++;
            snprintf(msg, 8, "%u", (unsigned)it);
            wl_sink = msg;
            free(msg);
        }
    }
    double t1 = wl_now();
    for (int i = 0; i < POOL; i++) free(pool[i]);
    wl_result(t1 - t0, ops, NULL);
    return 0;
}
