/*
 * counters.c — where the process's counters (sx_counters: memory held, system calls, calls of
 * threads without a heap) live until the statistics file exists: heap/share.c then moves them
 * into the file and points sx_count there. Without a file they stay here for good.
 */
#include "support.h"

static sx_counters boot_counts;
_Atomic(sx_counters *) sx_count_at = &boot_counts;
