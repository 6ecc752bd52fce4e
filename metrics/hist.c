#include "metrics/hist.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where sub-buckets 1..7 of an octave start, on a 16-bit mantissa (1.0 = 2^15): 2^15 * 2^(k/8)
 * rounded up, so that a bucket spans a ratio of 2^(1/8) however large its values. */
static const uint32_t SUB_START[METRIC_HIST_SUB - 1] = {35734, 38968, 42495, 46341,
                                                        50536, 55109, 60097};

int metric_hist_bucket(int64_t us)
{
    if (us < 1)
        return 0;
    /* bucket 1 + floor(log2(us) * SUB): the octave from the bit length, the sub-bucket from the
     * next 15 bits against a table, so no floating point on the proxy's path */
    int octave = 63 - __builtin_clzll((unsigned long long)us);
    uint32_t m = octave >= 15 ? (uint32_t)(us >> (octave - 15)) : (uint32_t)(us << (15 - octave));
    int sub = 0;
    while (sub < METRIC_HIST_SUB - 1 && m >= SUB_START[sub])
        sub++;
    int b = 1 + octave * METRIC_HIST_SUB + sub;
    return b < METRIC_HIST_BUCKETS ? b : METRIC_HIST_BUCKETS - 1;
}

double metric_hist_value(int bucket)
{
    if (bucket <= 0)
        return 0.5;
    /* the geometric middle of [2^((b-1)/SUB), 2^(b/SUB)) */
    return exp2(((double)(bucket - 1) + 0.5) / METRIC_HIST_SUB);
}

void metric_hist_add(struct metric_hist *h, int64_t us, uint64_t n)
{
    h->count[metric_hist_bucket(us)] += n;
    h->total += n;
}

void metric_hist_merge(struct metric_hist *into, const struct metric_hist *from)
{
    for (int i = 0; i < METRIC_HIST_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->total += from->total;
}

double metric_hist_quantile(const struct metric_hist *h, double q)
{
    if (h->total == 0 || q <= 0 || q > 1)
        return -1;
    /* the smallest bucket whose cumulative count reaches q of the total (nearest rank) */
    uint64_t rank = (uint64_t)ceil(q * (double)h->total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < METRIC_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return metric_hist_value(i);
    }
    return metric_hist_value(METRIC_HIST_BUCKETS - 1);
}

int metric_hist_format(const struct metric_hist *h, char *out, size_t size)
{
    size_t used = 0;
    if (size)
        out[0] = '\0';
    for (int i = 0; i < METRIC_HIST_BUCKETS; i++) {
        if (!h->count[i])
            continue;
        int n = snprintf(out + used, size - used, "%s%d:%llu", used ? " " : "", i,
                         (unsigned long long)h->count[i]);
        if (n < 0 || (size_t)n >= size - used)
            return -1;
        used += (size_t)n;
    }
    return (int)used;
}

int metric_hist_parse_add(struct metric_hist *h, const char *text)
{
    struct metric_hist add;
    memset(&add, 0, sizeof add);
    const char *p = text;
    while (*p) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || *end != ':' || b < 0 || b >= METRIC_HIST_BUCKETS)
            return -1;
        p = end + 1;
        if (!isdigit((unsigned char)*p))
            return -1; /* strtoull would skip a blank and negate a '-' */
        errno = 0;
        unsigned long long c = strtoull(p, &end, 10);
        if ((*end && *end != ' ') || errno == ERANGE)
            return -1;
        add.count[b] += c;
        add.total += c;
        p = *end ? end + 1 : end;
    }
    metric_hist_merge(h, &add);
    return 0;
}
