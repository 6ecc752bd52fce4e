#include "metrics/hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int metric_hist_bucket(int64_t us)
{
    if (us < 1)
        return 0;
    /* bucket 1 + floor(log2(us) * SUB): exact octave from the bit length, the sub-bucket from
     * the next bits, so no floating point on the proxy's path */
    int octave = 63 - __builtin_clzll((unsigned long long)us);
    int sub;
    if (octave >= 3)
        sub = (int)((us >> (octave - 3)) & (METRIC_HIST_SUB - 1));
    else
        sub = (int)((us << (3 - octave)) & (METRIC_HIST_SUB - 1));
    int b = 1 + octave * METRIC_HIST_SUB + sub;
    return b < METRIC_HIST_BUCKETS ? b : METRIC_HIST_BUCKETS - 1;
}

double metric_hist_value(int bucket)
{
    if (bucket <= 0)
        return 0.5;
    int octave = (bucket - 1) / METRIC_HIST_SUB, sub = (bucket - 1) % METRIC_HIST_SUB;
    double lo = ldexp(1.0 + (double)sub / METRIC_HIST_SUB, octave);
    double hi = ldexp(1.0 + (double)(sub + 1) / METRIC_HIST_SUB, octave);
    return sqrt(lo * hi);
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
        unsigned long long c = strtoull(p, &end, 10);
        if (end == p || (*end && *end != ' ') || *p == '-')
            return -1;
        add.count[b] += c;
        add.total += c;
        p = *end ? end + 1 : end;
    }
    metric_hist_merge(h, &add);
    return 0;
}
