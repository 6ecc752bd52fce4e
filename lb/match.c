#include "lb/match.h"

#include <string.h>

/* Locale-independent on purpose: tolower() would fold differently under another LC_CTYPE. */
static inline unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static inline bool byte_eq(char pat, char s, bool nocase)
{
    if (nocase)
        return fold((unsigned char)pat) == fold((unsigned char)s);
    return pat == s;
}

bool lb_eq_lower(const char *lower, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower[i] != (char)fold((unsigned char)s[i]))
            return false;
    return true;
}

static bool lit_eq(const char *lit, const char *s, size_t n, bool nocase)
{
    return nocase ? lb_eq_lower(lit, s, n) : memcmp(lit, s, n) == 0;
}

/* The classic greedy matcher: on a mismatch, retry from the most recent `*` with the subject one
 * byte further on. An earlier `*` never needs revisiting, since whatever it could absorb the later
 * one can absorb too: that is what bounds the work to O(plen * n). */
static bool glob(const char *pat, size_t plen, const char *s, size_t n, bool nocase)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < n) {
        if (pi < plen && pat[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < plen && (pat[pi] == '?' || byte_eq(pat[pi], s[si], nocase))) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

bool lb_wildcard_match(const char *pattern, const char *s, size_t n, bool nocase)
{
    return glob(pattern, strlen(pattern), s, n, nocase);
}

/* Collapses `*` runs (they mean the same as one `*` and only slow the matcher down) and folds the
 * case once, so matching folds the subject only. */
static size_t normalise(char *out, const char *text, bool nocase)
{
    size_t len = 0;
    for (const char *t = text; *t; t++) {
        if (*t == '*' && len && out[len - 1] == '*')
            continue;
        out[len++] = nocase ? (char)fold((unsigned char)*t) : *t;
    }
    out[len] = '\0';
    return len;
}

static void classify(struct lb_pattern *p)
{
    const char *t = p->text;
    size_t stars = 0, qmarks = 0;
    for (size_t i = 0; i < p->len; i++) {
        stars += t[i] == '*';
        qmarks += t[i] == '?';
    }
    p->has_star = stars > 0;
    p->min_len = (uint32_t)(p->len - stars);
    p->kind = LB_PATTERN_GLOB;
    if (qmarks)
        return;
    if (stars == 0) {
        p->kind = LB_PATTERN_EXACT;
        p->lit = t;
        p->lit_len = p->len;
    } else if (p->len == 1) {
        p->kind = LB_PATTERN_ANY;
    } else if (stars == 1 && t[p->len - 1] == '*') {
        p->kind = LB_PATTERN_PREFIX;
        p->lit = t;
        p->lit_len = p->len - 1;
    } else if (stars == 1 && t[0] == '*') {
        p->kind = LB_PATTERN_SUFFIX;
        p->lit = t + 1;
        p->lit_len = p->len - 1;
    }
}

int lb_pattern_compile(struct lb_pattern *p, struct arena *arena, const char *text, bool nocase)
{
    char *copy = arena_alloc(arena, strlen(text) + 1);
    if (!copy)
        return -1;
    *p = (struct lb_pattern){.text = copy, .nocase = nocase};
    p->len = (uint32_t)normalise(copy, text, nocase);
    classify(p);
    return 0;
}

bool lb_pattern_match(const struct lb_pattern *p, const char *s, size_t n)
{
    if (n < p->min_len)
        return false;
    switch (p->kind) {
    case LB_PATTERN_EXACT:
        return n == p->lit_len && lit_eq(p->lit, s, n, p->nocase);
    case LB_PATTERN_PREFIX:
        return lit_eq(p->lit, s, p->lit_len, p->nocase);
    case LB_PATTERN_SUFFIX:
        return lit_eq(p->lit, s + n - p->lit_len, p->lit_len, p->nocase);
    case LB_PATTERN_ANY:
        return true;
    default:
        if (!p->has_star && n != p->len)
            return false;
        return glob(p->text, p->len, s, n, p->nocase);
    }
}
