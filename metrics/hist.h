/* Mergeable latency histograms: log-linear buckets, METRIC_HIST_SUB per power of two, over
 * microseconds from 1 us to 2^28 us (268 s; larger values count in the last bucket); a value's
 * bucket is found in O(1), two histograms merge by adding counts, and a quantile is read back
 * within about 4.4 % (half a bucket). Several writers' histograms of the same second, and many
 * seconds' histograms, merge into one for p50/p90/p99 over any window. Pure: no I/O. */
#ifndef GANTRY_METRICS_HIST_H
#define GANTRY_METRICS_HIST_H

#include <stddef.h>
#include <stdint.h>

enum {
    METRIC_HIST_SUB = 8,                            /* buckets per power of two */
    METRIC_HIST_BUCKETS = 1 + 28 * METRIC_HIST_SUB, /* bucket 0: below 1 us */
};

struct metric_hist {
    uint64_t count[METRIC_HIST_BUCKETS];
    uint64_t total;
};

int metric_hist_bucket(int64_t us);
/* The value a bucket stands for (its geometric middle), in microseconds. */
double metric_hist_value(int bucket);
void metric_hist_add(struct metric_hist *h, int64_t us, uint64_t n);
void metric_hist_merge(struct metric_hist *into, const struct metric_hist *from);
/* The q-quantile (0 < q <= 1) in microseconds; -1 when the histogram is empty. */
double metric_hist_quantile(const struct metric_hist *h, double q);

/* The sparse text form stored in Redis: "B:C B:C ..." (bucket:count, buckets ascending). Returns
 * the length written, or -1 when out is too small. */
int metric_hist_format(const struct metric_hist *h, char *out, size_t size);
/* Adds the text form's counts into h. Returns 0, or -1 on malformed text (h unchanged then). */
int metric_hist_parse_add(struct metric_hist *h, const char *text);

#endif
