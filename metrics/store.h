/* The metric store on Redis: 1-second datapoints per series, merged by a Lua script so that
 * several writers (lb processes, nodes) sum into the same second, rolled up into 1-minute
 * datapoints kept longer, and read back as windowed statistics (Sum, Average, Minimum, Maximum,
 * SampleCount, pNN) by everything that reads metrics: gantry metrics and the autoscaler.
 *
 * Key layout (docs/metrics.md): gantry:m:s:ID:MINUTE (hash: field SECOND-IN-MINUTE -> datapoint,
 * "hS" -> histogram), gantry:m:r:ID:HOUR (the same per minute: the rollups), gantry:m:series
 * (sorted set: ID scored by the last second written, pruned past the rollups' retention). A
 * datapoint is "SUM" for a single sample, else "SUM COUNT MIN MAX". Keys expire after the
 * retention, so memory per series is bounded.
 *
 * Writing builds the arguments of one EVAL (metric_batch), sent by the caller on its own
 * connection (gantry-lb asynchronously, others with redis_sync); reading uses a redis_sync. */
#ifndef GANTRY_METRICS_STORE_H
#define GANTRY_METRICS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/redis_sync.h"
#include "metrics/hist.h"

struct metric_retention {
    int64_t seconds_s; /* 1-second datapoints kept this long (metrics.retention) */
    int64_t minutes_s; /* 1-minute rollups kept this long (metrics.rollup_retention) */
};

/* --- writing --- */

struct metric_batch {
    char **argv;
    size_t *argvlen;
    size_t argc, cap;
    size_t datapoints; /* values and histograms added */
    bool failed;       /* out of memory: the batch is to be dropped */
};

void metric_batch_init(struct metric_batch *b, const struct metric_retention *retention);
void metric_batch_free(struct metric_batch *b);
/* Empties the batch for the next second, keeping its memory. */
void metric_batch_reset(struct metric_batch *b, const struct metric_retention *retention);
/* One second's datapoint of a series: the sum of its samples, their count, min and max. */
void metric_batch_value(struct metric_batch *b, const char *series_id, int64_t second, double sum,
                        double count, double min, double max);
/* A single sample as that second's datapoint (a gauge, or a counter's per-second delta). */
void metric_batch_sample(struct metric_batch *b, const char *series_id, int64_t second,
                         double value);
/* A second's latency histogram (values in microseconds). */
void metric_batch_hist(struct metric_batch *b, const char *series_id, int64_t second,
                       const struct metric_hist *h);
/* The EVAL command: argc, argv and argvlen for redisAppendCommandArgv. NULL when the batch
 * failed or holds nothing. */
bool metric_batch_command(const struct metric_batch *b, int *argc, const char ***argv,
                          const size_t **argvlen);
/* Sends the batch over a synchronous connection. 0 or -1 (r->error). */
int metric_batch_send(struct metric_batch *b, struct redis_sync *r);

/* --- reading --- */

enum metric_stat_kind {
    METRIC_SUM,
    METRIC_AVERAGE,
    METRIC_MINIMUM,
    METRIC_MAXIMUM,
    METRIC_SAMPLE_COUNT,
    METRIC_PERCENTILE,
};

struct metric_stat {
    enum metric_stat_kind kind;
    double q; /* METRIC_PERCENTILE: 0.99 for "p99" */
};

/* "Sum", "Average", "Minimum", "Maximum", "SampleCount", "p50", "p99.9" (CloudWatch's names).
 * 0 or -1. */
int metric_stat_parse(const char *text, struct metric_stat *out);

/* What a window of a series holds: its datapoints merged. */
struct metric_window {
    double sum, count, min, max;
    int datapoints; /* seconds (or rollup minutes) that had data: 0 is missing data */
    bool has_hist;
    struct metric_hist hist;
};

/* Reads the seconds [start, end) of the series: 1-second datapoints where the retention still has
 * them, 1-minute rollups before that (whole minutes only). 0, or -1 (r->error). */
int metric_read_window(struct redis_sync *r, const char *series_id, int64_t start, int64_t end,
                       const struct metric_retention *retention, struct metric_window *out);
/* The statistic over the window; false when the window has no datapoint (missing data, which
 * is never read as zero). Percentiles of a series without histograms are missing too; they are
 * in seconds (histograms are written in microseconds, latency values in seconds). */
bool metric_window_value(const struct metric_window *w, struct metric_stat stat, double *out);

/* The series ids written to (gantry:m:series), for listings: a NULL-terminated array of strings
 * to free with metric_free_ids(), or NULL (r->error). */
char **metric_list_ids(struct redis_sync *r);
void metric_free_ids(char **ids);

#endif
