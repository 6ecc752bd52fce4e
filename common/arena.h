/* Arena: many small allocations freed together (a parsed configuration, say). Allocation returns
 * zeroed, aligned memory, or NULL when the system is out of memory. */
#ifndef GANTRY_COMMON_ARENA_H
#define GANTRY_COMMON_ARENA_H

#include <stddef.h>

struct arena_chunk;
struct arena {
    struct arena_chunk *chunks;
};

void *arena_alloc(struct arena *a, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
void arena_free(struct arena *a);

#endif
