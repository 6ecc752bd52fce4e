/* Reading an action's input the way ECS validates it: a member of the wrong JSON type is a
 * SerializationException (as AWS's JSON protocols answer), a missing required member or a value
 * out of range an InvalidParameterException naming the member. And ECS's pagination:
 * maxResults/nextToken over a full, ordered list. */
#ifndef GANTRY_CORE_PARAMS_H
#define GANTRY_CORE_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/api_error.h"

/* *out is NULL when absent and not required. */
int param_string(const json_t *in, const char *key, bool required, const char **out,
                 struct api_error *err);
/* *out keeps its value when absent and not required. */
int param_int(const json_t *in, const char *key, bool required, int64_t min, int64_t max,
              int64_t *out, struct api_error *err);
int param_bool(const json_t *in, const char *key, bool *out, struct api_error *err);
/* A list of strings (borrowed; NULL when absent), at most max items. */
int param_strings(const json_t *in, const char *key, bool required, size_t max, json_t **out,
                  struct api_error *err);
/* Sorts the n strings in place (strcmp order: the stable order the List* actions page through);
 * sorted_strings() also returns them as a new JSON array. */
void sort_strings(const char **items, size_t n);
json_t *sorted_strings(const char **items, size_t n);

/* Sets out[out_key] to the page of `all` (a JSON array of strings) that maxResults (default
 * default_limit, at most max_limit) and nextToken of `in` select, and out["nextToken"] when more
 * follow. Steals nothing. */
int paginate(const json_t *in, const json_t *all, size_t default_limit, size_t max_limit,
             const char *out_key, json_t *out, struct api_error *err);

#endif
