/*
 * realloc — growth by realloc: vectors that double their capacity as elements are pushed (eight
 * growing side by side), and strings appended to one byte at a time.
 */
#include "../workload.h"

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    uint64_t rounds = wl_scaled(60, a.scale), ops = 0;
    enum { VECS = 8, ELEMS = 200000, STRS = 64, STRLEN = 16384 };
    double t0 = wl_now();
    for (uint64_t r = 0; r < rounds; r++) {
        uint32_t *v[VECS] = {0};
        size_t cap[VECS] = {0};
        for (uint32_t i = 0; i < ELEMS; i++)
            for (int k = 0; k < VECS; k++) {
                if (i == cap[k]) {
                    cap[k] = cap[k] ? cap[k] * 2 : 4;
                    v[k] = realloc(v[k], cap[k] * sizeof(uint32_t));
                    if (!v[k]) wl_fail("out of memory");
                    ops++;
                }
                v[k][i] = i * (uint32_t)(k + 1);
            }
        for (int k = 0; k < VECS; k++) {
            for (uint32_t i = 0; i < ELEMS; i += 997)
                if (v[k][i] != i * (uint32_t)(k + 1)) wl_fail("vector element lost");
            free(v[k]);
        }
        for (int k = 0; k < STRS / 8; k++) {
            char *str[8] = {0};
            for (size_t j = 0; j < STRLEN; j++)
                for (int m = 0; m < 8; m++) {
                    str[m] = realloc(str[m], j + 2);
                    if (!str[m]) wl_fail("out of memory");
                    str[m][j] = (char)('a' + (j + (size_t)m) % 26);
                    str[m][j + 1] = '\0';
                    ops++;
                }
            for (int m = 0; m < 8; m++) {
                for (size_t j = 0; j < STRLEN; j += 101)
                    if (str[m][j] != (char)('a' + (j + (size_t)m) % 26)) wl_fail("string byte lost");
                free(str[m]);
            }
        }
    }
    double t1 = wl_now();
    wl_result(t1 - t0, ops, NULL);
    return 0;
}
