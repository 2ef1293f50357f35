/*
 * zero_size — using a block of zero bytes.
 *
 *   read   read 8 bytes of it
 *   write  write 8 bytes to it, then free it and allocate again
 *
 * The third word says how the block was asked for: malloc (malloc(0)), calloc (calloc(0, 1)) or
 * memalign (posix_memalign with alignment 64 and size 0). Caught, for read: only a fault (there
 * is nothing in a zero-size block to read, so a read that returns anything went unnoticed); for
 * write: the process dies (abort or fault) before the marker.
 */
#include "case.h"

int main(int argc, char **argv) {
    if (argc != 3) case_broken("usage: zero_size read|write malloc|calloc|memalign");
    const char *how = argv[2];
    /* a freed secret of the smallest size, which the zero-size block may be cut from */
    char *old = case_malloc(16);
    case_fill(old, 16, 1);
    free(old);
    void *z = NULL;
    if (!strcmp(how, "malloc")) z = malloc(0);
    else if (!strcmp(how, "calloc")) z = calloc(0, 1);
    else if (!strcmp(how, "memalign")) {
        if (posix_memalign(&z, 64, 0) != 0) z = NULL;
    } else case_broken("unknown allocation");
    if (!z) case_caught("no block for size 0"); /* nothing to misuse */
    case_sink = z;
    volatile unsigned char *b = (volatile unsigned char *)z;
    if (!strcmp(argv[1], "read")) {
        for (int i = 0; i < 8; i++) case_byte_sink = b[i];
        free(z);
        case_missed("read of a zero-size block");
    } else if (!strcmp(argv[1], "write")) {
        for (int i = 0; i < 8; i++) b[i] = 'A';
        free(z);
        case_churn(1);
        case_missed("write to a zero-size block");
    }
    case_broken("unknown variant");
}
