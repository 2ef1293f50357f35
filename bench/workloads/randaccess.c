/*
 * randaccess — a large heap visited at random: 256 MiB of 64-byte nodes linked into one random
 * cycle, then followed node by node. Every step is likely a TLB miss, which is what backing the
 * heap with huge pages (STRATA_OPTIONS=huge_pages=thp) is for; see `make bench-hugepages`.
 * The walk must come back to its start after exactly as many steps as there are nodes.
 */
#include "../workload.h"

typedef struct node {
    struct node *next;
    uint64_t id;
    char pad[48];
} node;

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    size_t n = (size_t)wl_scaled((uint64_t)4 << 20, a.scale);
    node **nodes = malloc(n * sizeof *nodes);
    size_t *order = malloc(n * sizeof *order);
    if (!nodes || !order) wl_fail("out of memory");
    uint64_t s = 4242;
    for (size_t i = 0; i < n; i++) {
        nodes[i] = malloc(sizeof(node));
        if (!nodes[i]) wl_fail("out of memory");
        nodes[i]->id = i;
        order[i] = i;
    }
    for (size_t i = n - 1; i > 0; i--) { /* a random cycle through every node */
        size_t j = (size_t)(wl_rnd(&s) % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < n; i++) nodes[order[i]]->next = nodes[order[(i + 1) % n]];
    free(order);
    uint64_t steps = wl_scaled(16000000, a.scale), laps = 0;
    node *p = nodes[0];
    double t0 = wl_now();
    for (uint64_t i = 1; i <= steps; i++) {
        p = p->next;
        if (p == nodes[0]) {
            if (i % n != 0) wl_fail("the cycle is broken after %llu steps", (unsigned long long)i);
            laps++;
        }
    }
    double t1 = wl_now();
    if (laps != steps / n) wl_fail("%llu laps, expected %llu", (unsigned long long)laps,
                                   (unsigned long long)(steps / n));
    for (size_t i = 0; i < n; i++) {
        if (nodes[i]->id != i) wl_fail("node %zu corrupted", i);
        free(nodes[i]);
    }
    free(nodes);
    wl_result(t1 - t0, n, NULL);
    return 0;
}
