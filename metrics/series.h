/* Metric series as CloudWatch names them: a namespace ("AWS/ApplicationELB", "AWS/ECS"), a
 * metric name ("RequestCount") and up to METRIC_MAX_DIMS dimensions (name=value pairs such as
 * TargetGroup=web). A series' id is its canonical text, "NS|Name|K1=V1,K2=V2" with dimensions
 * sorted by name: every writer and reader derives the same id from the same series, whatever the
 * order it lists dimensions in. Pure: no I/O. */
#ifndef GANTRY_METRICS_SERIES_H
#define GANTRY_METRICS_SERIES_H

#include <stdbool.h>
#include <stddef.h>

enum {
    METRIC_MAX_DIMS = 8,
    METRIC_NAME_MAX = 255, /* namespace, metric name, dimension name or value */
    METRIC_ID_MAX = 1024,  /* the whole canonical id */
};

struct metric_dim {
    const char *name;
    const char *value;
};

struct metric_series {
    const char *ns;
    const char *name;
    struct metric_dim dims[METRIC_MAX_DIMS];
    int n_dims;
};

/* Writes the canonical id into out. Returns its length, or -1 when a part is empty, too long,
 * or holds a character ids reserve ('|', ',', '=', control characters), or there are too many
 * dimensions (why says which). */
int metric_series_id(const struct metric_series *s, char *out, size_t size, char *why,
                     size_t why_size);

/* Parses "K=V" (as `gantry metrics get --dimension` takes it) into d, pointing into text, which
 * it modifies (the '=' becomes a NUL). Returns 0 or -1. */
int metric_dim_parse(char *text, struct metric_dim *d);

#endif
