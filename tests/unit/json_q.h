/* Unit tests' JSON literals written with single quotes ('name':'web'), so they read in C strings
 * without escapes: json_q() swaps them for double quotes and parses, failing the test when the
 * text does not parse. Include after <cmocka.h>. */
#ifndef GANTRY_TESTS_UNIT_JSON_Q_H
#define GANTRY_TESTS_UNIT_JSON_Q_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static inline json_t *json_q(const char *text)
{
    size_t n = strlen(text);
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i <= n; i++)
        s[i] = text[i] == '\'' ? '"' : text[i];
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    free(s);
    if (!v)
        fail_msg("the test's JSON does not parse (%s): %s", e.text, text);
    return v;
}

#endif
