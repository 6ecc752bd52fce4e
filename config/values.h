/* Parsers for the value types of the config files and command lines. Each returns 0 on success and
 * -1 on malformed input, never a partial value.
 *   durations: 500ms, 30s, 5m, 1h, 1m30s; a bare number is seconds (as nginx); stored as ms
 *   sizes:     512, 16k, 1m, 2g (binary units, optional trailing b); stored as bytes
 *   booleans:  true/false, yes/no, on/off
 *   integers:  decimal, optional sign
 *   Redis:     redis://HOST:PORT[/DB] or unix:/path (HOST as in common/net.h) */
#ifndef GANTRY_CONFIG_VALUES_H
#define GANTRY_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"

struct redis_url {
    struct net_addr addr; /* len 0: not configured */
    int db;
};

int value_parse_duration_ms(const char *text, int64_t *out);
int value_parse_size(const char *text, int64_t *out);
int value_parse_bool(const char *text, bool *out);
int value_parse_int(const char *text, int64_t *out);
int value_parse_redis_url(const char *text, struct redis_url *out, char *err, size_t errlen);
/* Formats like the input syntax: "1m30s", "16k", "redis://127.0.0.1:6379/0". */
const char *value_format_duration(int64_t ms, char *out, size_t size);
const char *value_format_size(int64_t bytes, char *out, size_t size);
const char *value_format_redis_url(const struct redis_url *url, char *out, size_t size);

#endif
