/*
 * vgrind.c — whether memcheck watches the process (vgrind.h): asked once, at start-up.
 *
 * GET_VBITS is a request only memcheck answers (1 for memory the program may read): valgrind's
 * other tools, and a real CPU, leave its default, 0. RUNNING_ON_VALGRIND would say yes under
 * callgrind too, where describing blocks is of no use and the slow paths it takes would be
 * counted instead of the real ones.
 */
#include "support.h"

bool sx_vg_memcheck;

void sx_vg_init(void) {
    char probe = 0, vbits;
    sx_vg_memcheck = VALGRIND_GET_VBITS(&probe, &vbits, 1) == 1;
}
