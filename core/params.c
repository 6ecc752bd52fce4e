#include "core/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int wrong_type(struct api_error *err, const char *key, const char *expected)
{
    return api_fail(err, "SerializationException", "'%s' must be %s", key, expected);
}

int param_string(const json_t *in, const char *key, bool required, const char **out,
                 struct api_error *err)
{
    const json_t *v = json_object_get(in, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return api_fail(err, "InvalidParameterException", "'%s' is required", key);
        return 0;
    }
    if (!json_is_string(v))
        return wrong_type(err, key, "a string");
    *out = json_string_value(v);
    return 0;
}

int param_int(const json_t *in, const char *key, bool required, int64_t min, int64_t max,
              int64_t *out, struct api_error *err)
{
    const json_t *v = json_object_get(in, key);
    if (!v || json_is_null(v)) {
        if (required)
            return api_fail(err, "InvalidParameterException", "'%s' is required", key);
        return 0;
    }
    if (!json_is_integer(v))
        return wrong_type(err, key, "an integer");
    int64_t n = json_integer_value(v);
    if (n < min || n > max)
        return api_fail(err, "InvalidParameterException", "'%s' is %lld (expected %lld to %lld)",
                        key, (long long)n, (long long)min, (long long)max);
    *out = n;
    return 0;
}

int param_bool(const json_t *in, const char *key, bool *out, struct api_error *err)
{
    const json_t *v = json_object_get(in, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return wrong_type(err, key, "true or false");
    *out = json_is_true(v);
    return 0;
}

int param_strings(const json_t *in, const char *key, bool required, size_t max, json_t **out,
                  struct api_error *err)
{
    json_t *v = json_object_get(in, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return api_fail(err, "InvalidParameterException", "'%s' is required", key);
        return 0;
    }
    if (!json_is_array(v))
        return wrong_type(err, key, "a list of strings");
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return wrong_type(err, key, "a list of strings");
    }
    if (json_array_size(v) > max)
        return api_fail(err, "InvalidParameterException", "'%s' has %zu items (at most %zu)", key,
                        json_array_size(v), max);
    *out = v;
    return 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void sort_strings(const char **items, size_t n)
{
    if (n)
        qsort(items, n, sizeof *items, compare_strings);
}

json_t *sorted_strings(const char **items, size_t n)
{
    json_t *all = json_array();
    sort_strings(items, n);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(all, json_string(items[i]));
    return all;
}

/* Tokens are opaque to clients; ours is the offset of the next item, checked on the way in. */
static int parse_token(const char *token, size_t count, size_t *offset)
{
    if (strncmp(token, "gantry-", 7) != 0)
        return -1;
    char *end;
    unsigned long long n = strtoull(token + 7, &end, 10);
    if (*end || end == token + 7 || n > count)
        return -1;
    *offset = (size_t)n;
    return 0;
}

int paginate(const json_t *in, const json_t *all, size_t default_limit, size_t max_limit,
             const char *out_key, json_t *out, struct api_error *err)
{
    int64_t limit = (int64_t)default_limit;
    if (param_int(in, "maxResults", false, 1, (int64_t)max_limit, &limit, err) < 0)
        return -1;
    const char *token;
    if (param_string(in, "nextToken", false, &token, err) < 0)
        return -1;
    size_t count = json_array_size(all), offset = 0;
    if (token && parse_token(token, count, &offset) < 0)
        return api_fail(err, "InvalidParameterException", "Invalid nextToken");
    json_t *page = json_array();
    for (size_t i = offset; i < count && i < offset + (size_t)limit; i++)
        json_array_append(page, json_array_get(all, i));
    json_object_set_new(out, out_key, page);
    if (offset + (size_t)limit < count) {
        char next[32];
        snprintf(next, sizeof next, "gantry-%zu", offset + (size_t)limit);
        json_object_set_new(out, "nextToken", json_string(next));
    }
    return 0;
}
