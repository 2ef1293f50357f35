/*
 * espresso — one thread, small objects of mixed sizes in linked lists: the set operations of the
 * espresso logic minimiser, where a cover is a list of cubes (bit vectors) and every
 * intersection makes a new cube that is freed again when it turns out empty or redundant.
 *
 * Every cube carries the xor of its words; it is checked before the cube is freed.
 */
#include "../workload.h"

typedef struct cube {
    struct cube *next;
    uint32_t words;
    uint32_t pad;
    uint64_t check;
    uint64_t bits[];
} cube;

static uint64_t ops;

static cube *cube_new(uint32_t words) {
    cube *c = malloc(sizeof(cube) + (size_t)words * 8);
    if (!c) wl_fail("out of memory");
    ops++;
    c->words = words;
    c->next = NULL;
    return c;
}

static void cube_seal(cube *c) {
    uint64_t x = 0x5bd1e995;
    for (uint32_t i = 0; i < c->words; i++) x ^= c->bits[i] * (i + 1);
    c->check = x;
}

static void cube_free(cube *c) {
    uint64_t x = 0x5bd1e995;
    for (uint32_t i = 0; i < c->words; i++) x ^= c->bits[i] * (i + 1);
    if (x != c->check) wl_fail("cube corrupted");
    free(c);
}

static void cover_free(cube *c) {
    while (c) {
        cube *n = c->next;
        cube_free(c);
        c = n;
    }
}

static cube *random_cover(uint64_t *s, int n, uint32_t words) {
    cube *list = NULL;
    for (int i = 0; i < n; i++) {
        cube *c = cube_new(words);
        for (uint32_t w = 0; w < words; w++) c->bits[w] = wl_rnd(s) | wl_rnd(s); /* dense */
        cube_seal(c);
        c->next = list;
        list = c;
    }
    return list;
}

static int contained(const cube *a, const cube *b) { /* a within b */
    for (uint32_t w = 0; w < a->words; w++)
        if ((a->bits[w] & ~b->bits[w]) != 0) return 0;
    return 1;
}

/* Pairwise intersections of two covers, without empty or contained cubes. */
static cube *intersect(const cube *A, const cube *B, uint32_t words) {
    cube *out = NULL;
    size_t n = 0;
    for (const cube *a = A; a; a = a->next)
        for (const cube *b = B; b; b = b->next) {
            cube *c = cube_new(words);
            int empty = 1;
            for (uint32_t w = 0; w < words; w++) {
                c->bits[w] = a->bits[w] & b->bits[w];
                empty &= c->bits[w] == 0;
            }
            cube_seal(c);
            int drop = empty;
            size_t seen = 0;
            for (cube *o = out; o && !drop; o = o->next) {
                if (o == c || ++seen > n) wl_fail("a live cube was handed out again");
                drop = contained(c, o);
            }
            if (drop) {
                cube_free(c);
                continue;
            }
            c->next = out;
            out = c;
            n++;
        }
    return out;
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    uint64_t s = 12345, rounds = wl_scaled(12000, a.scale), total = 0;
    double t0 = wl_now();
    for (uint64_t r = 0; r < rounds; r++) {
        uint32_t words = (uint32_t)wl_rnd_range(&s, 1, 12);
        cube *A = random_cover(&s, (int)wl_rnd_range(&s, 4, 24), words);
        cube *B = random_cover(&s, (int)wl_rnd_range(&s, 4, 24), words);
        cube *C = intersect(A, B, words);
        for (cube *c = C; c; c = c->next) total++;
        cover_free(A);
        cover_free(B);
        cover_free(C);
    }
    double t1 = wl_now();
    if (total == 0) wl_fail("no cubes survived");
    wl_result(t1 - t0, ops, " cubes=%llu", (unsigned long long)total);
    return 0;
}
