/*
 * delete_mismatch — C++ objects given back with the wrong form of delete.
 *
 *   array-as-scalar    new T[k] given to delete: T has a destructor, so new[] put the element
 *                      count before the array and delete frees a pointer 8 bytes into the block
 *   scalar-as-array    new T given to delete[]: delete[] reads a count that is not there and
 *                      frees a pointer 8 bytes before the block
 *   trivial            new char[SIZE] given to delete: the same pointer comes back, through the
 *                      sized operator delete(void *, 1); only a size check can see it
 *
 * T is SIZE bytes (small 8, medium 4096, large 256 KiB; k = 1 for arrays of T). Caught: the
 * process dies (abort or fault) before the marker.
 */
#include "case.h"

static volatile unsigned destroyed;

template <size_t N> struct Obj {
    unsigned char data[N];
    Obj() { data[0] = 1; }
    ~Obj() { destroyed = destroyed + data[0]; }
};

template <size_t N> static void run(const char *v) {
    if (!strcmp(v, "array-as-scalar")) {
        Obj<N> *a = new Obj<N>[1];
        case_sink = a;
        delete a;
    } else if (!strcmp(v, "scalar-as-array")) {
        Obj<N> *o = new Obj<N>;
        case_sink = o;
        delete[] o;
    } else if (!strcmp(v, "trivial")) {
        char *c = new char[N];
        case_sink = c;
        delete c;
    } else {
        case_broken("unknown variant");
    }
    case_churn(N);
    case_missed("mismatched delete accepted");
}

int main(int argc, char **argv) {
    switch (case_args(argc, argv)) {
    case 8: run<8>(argv[1]); break;
    case 4096: run<4096>(argv[1]); break;
    default: run<256 * 1024>(argv[1]); break;
    }
    return 0;
}
