#include "config/values.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads decimal digits into *out without overflowing; returns the first byte after them. */
static const char *read_digits(const char *p, int64_t *out)
{
    int64_t value = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9') {
        if (value > (INT64_MAX - (*p - '0')) / 10)
            return NULL;
        value = value * 10 + (*p - '0');
        p++;
    }
    if (p == start)
        return NULL;
    *out = value;
    return p;
}

static int add_checked(int64_t *total, int64_t value, int64_t unit)
{
    if (value > (INT64_MAX - *total) / unit)
        return -1;
    *total += value * unit;
    return 0;
}

int value_parse_duration_ms(const char *text, int64_t *out)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t total = 0;
    const char *p = text;
    int64_t value;
    if (!(p = read_digits(p, &value)))
        return -1;
    if (*p == '\0') { /* a bare number is seconds */
        if (add_checked(&total, value, 1000) < 0)
            return -1;
        *out = total;
        return 0;
    }
    for (;;) {
        size_t i, n = 0;
        for (i = 0; i < sizeof units / sizeof units[0]; i++) {
            n = strlen(units[i].suffix);
            if (strncmp(p, units[i].suffix, n) == 0 && !(p[n] >= 'a' && p[n] <= 'z'))
                break;
        }
        if (i == sizeof units / sizeof units[0] || add_checked(&total, value, units[i].ms) < 0)
            return -1;
        p += n;
        if (*p == '\0')
            break;
        if (!(p = read_digits(p, &value)))
            return -1;
    }
    *out = total;
    return 0;
}

int value_parse_size(const char *text, int64_t *out)
{
    int64_t value;
    const char *p = read_digits(text, &value);
    if (!p)
        return -1;
    int64_t unit = 1;
    switch (tolower((unsigned char)*p)) {
    case 'k':
        unit = 1024;
        p++;
        break;
    case 'm':
        unit = 1024 * 1024;
        p++;
        break;
    case 'g':
        unit = 1024 * 1024 * 1024;
        p++;
        break;
    }
    if (*p == 'b' || *p == 'B')
        p++;
    int64_t total = 0;
    if (*p != '\0' || add_checked(&total, value, unit) < 0)
        return -1;
    *out = total;
    return 0;
}

int value_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int value_parse_int(const char *text, int64_t *out)
{
    bool negative = *text == '-';
    if (*text == '-' || *text == '+')
        text++;
    int64_t value;
    const char *end = read_digits(text, &value);
    if (!end || *end != '\0')
        return -1;
    *out = negative ? -value : value;
    return 0;
}

/* "host" and "[v6]" lack a port; "host:port" and "[v6]:port" have one. */
static bool has_port(const char *hostport)
{
    const char *close = strchr(hostport, ']');
    return close ? close[1] == ':' : strchr(hostport, ':') != NULL;
}

int value_parse_redis_url(const char *text, struct redis_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "unix:", 5) == 0)
        return net_addr_parse(text, &out->addr, err, errlen);
    if (strncmp(text, "redis://", 8) != 0) {
        snprintf(err, errlen, "a Redis URL starts with redis:// or unix:");
        return -1;
    }
    char hostport[NET_ADDR_TEXT_MAX];
    const char *rest = text + 8;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (memchr(rest, '@', n)) {
        snprintf(err, errlen, "passwords in Redis URLs are not supported");
        return -1;
    }
    if (n >= sizeof hostport) {
        snprintf(err, errlen, "host too long");
        return -1;
    }
    memcpy(hostport, rest, n);
    hostport[n] = '\0';
    if (!has_port(hostport))
        strncat(hostport, ":6379", sizeof hostport - strlen(hostport) - 1);
    if (net_addr_parse(hostport, &out->addr, err, errlen) < 0)
        return -1;
    if (slash && slash[1]) {
        int64_t db;
        if (value_parse_int(slash + 1, &db) < 0 || db < 0 || db > 15) {
            snprintf(err, errlen, "database must be a number from 0 to 15");
            return -1;
        }
        out->db = (int)db;
    }
    return 0;
}

const char *value_format_duration(int64_t ms, char *out, size_t size)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t used = 0;
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, size, "0s");
        return out;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0] && used < size; i++) {
        if (ms / units[i].ms == 0)
            continue;
        int n = snprintf(out + used, size - used, "%lld%s", (long long)(ms / units[i].ms),
                         units[i].suffix);
        used += n > 0 ? (size_t)n : 0;
        ms %= units[i].ms;
    }
    return out;
}

const char *value_format_size(int64_t bytes, char *out, size_t size)
{
    static const char suffix[] = {'g', 'm', 'k'};
    for (int i = 0; i < 3; i++) {
        int64_t unit = (int64_t)1 << (10 * (3 - i));
        if (bytes >= unit && bytes % unit == 0) {
            snprintf(out, size, "%lld%c", (long long)(bytes / unit), suffix[i]);
            return out;
        }
    }
    snprintf(out, size, "%lld", (long long)bytes);
    return out;
}

const char *value_format_redis_url(const struct redis_url *url, char *out, size_t size)
{
    char addr[NET_ADDR_TEXT_MAX];
    if (!url->addr.len)
        snprintf(out, size, "%s", "");
    else if (net_addr_family(&url->addr) == AF_UNIX)
        snprintf(out, size, "%s", net_addr_format(&url->addr, addr, sizeof addr));
    else
        snprintf(out, size, "redis://%s/%d", net_addr_format(&url->addr, addr, sizeof addr),
                 url->db);
    return out;
}
