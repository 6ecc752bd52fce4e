/* Wildcard patterns as ALB's rule conditions use them: `*` matches any run of bytes (possibly
 * empty), `?` exactly one byte, every other byte itself; there is no escape. Subjects are slices
 * of request bytes (pointer + length, not NUL-terminated); patterns are NUL-terminated strings.
 * Case-insensitive means ASCII case folding only, whatever the locale.
 * Matching is iterative (greedy, backtracking only to the last `*`): O(len(pattern) * len(subject))
 * in the worst case, never exponential, no recursion, no allocation.
 * lb_pattern_compile() does the work once per configuration: it collapses runs of `*`, folds the
 * pattern's case, and recognises the shapes that need no wildcard engine (exact, prefix*, *suffix,
 * `*`), so the common patterns cost one comparison per request. */
#ifndef GANTRY_LB_MATCH_H
#define GANTRY_LB_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

enum lb_pattern_kind {
    LB_PATTERN_EXACT,  /* no wildcard */
    LB_PATTERN_PREFIX, /* literal* */
    LB_PATTERN_SUFFIX, /* *literal */
    LB_PATTERN_ANY,    /* * */
    LB_PATTERN_GLOB,   /* anything else */
};

struct lb_pattern {
    const char *text; /* normalised: `*` runs collapsed, lower-cased when nocase */
    const char *lit;  /* PREFIX, SUFFIX, EXACT: the literal part */
    uint32_t len;     /* of text */
    uint32_t lit_len;
    uint32_t min_len; /* the shortest subject that can match: the pattern's non-`*` bytes */
    uint8_t kind;     /* enum lb_pattern_kind */
    bool nocase;
    bool has_star;
};

/* One-off match of a raw pattern, no compilation (tests, rare paths). */
bool lb_wildcard_match(const char *pattern, const char *s, size_t n, bool nocase);

/* Compiles text into p, copying what it keeps into arena. Returns 0, or -1 when out of memory. */
int lb_pattern_compile(struct lb_pattern *p, struct arena *arena, const char *text, bool nocase);
bool lb_pattern_match(const struct lb_pattern *p, const char *s, size_t n);

/* ASCII-only case-insensitive equality of n bytes; `lower` must already be lower-case. */
bool lb_eq_lower(const char *lower, const char *s, size_t n);

#endif
