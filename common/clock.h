/* Clocks: monotonic time for timeouts and intervals, wall time for timestamps people read. */
#ifndef GANTRY_COMMON_CLOCK_H
#define GANTRY_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);
int64_t clock_wall_ms(void);
/* Writes "2026-11-21T08:10:25.123Z" (UTC); returns the length written. */
size_t clock_format_iso8601(int64_t wall_ms, char *out, size_t size);

#endif
