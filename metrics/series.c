#include "metrics/series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *part_problem(const char *s)
{
    if (!s || !*s)
        return "is empty";
    if (strlen(s) > METRIC_NAME_MAX)
        return "is longer than 255 characters";
    for (; *s; s++)
        if (*s == '|' || *s == ',' || *s == '=' || (unsigned char)*s < 0x20 || *s == 0x7f)
            return "holds '|', ',', '=' or a control character";
    return NULL;
}

static int compare_dims(const void *a, const void *b)
{
    return strcmp(((const struct metric_dim *)a)->name, ((const struct metric_dim *)b)->name);
}

int metric_series_id(const struct metric_series *s, char *out, size_t size, char *why,
                     size_t why_size)
{
    const char *problem;
    if ((problem = part_problem(s->ns)) || (problem = part_problem(s->name))) {
        snprintf(why, why_size, "the namespace or metric name %s", problem);
        return -1;
    }
    if (s->n_dims < 0 || s->n_dims > METRIC_MAX_DIMS) {
        snprintf(why, why_size, "at most %d dimensions", METRIC_MAX_DIMS);
        return -1;
    }
    for (int i = 0; i < s->n_dims; i++) { /* before sorting: qsort compares the names */
        if ((problem = part_problem(s->dims[i].name)) ||
            (problem = part_problem(s->dims[i].value))) {
            snprintf(why, why_size, "dimension %d %s", i + 1, problem);
            return -1;
        }
    }
    struct metric_dim dims[METRIC_MAX_DIMS];
    memcpy(dims, s->dims, sizeof dims[0] * (size_t)s->n_dims);
    qsort(dims, (size_t)s->n_dims, sizeof dims[0], compare_dims);
    size_t used = (size_t)snprintf(out, size, "%s|%s|", s->ns, s->name);
    for (int i = 0; i < s->n_dims && used < size; i++) {
        if (i > 0 && strcmp(dims[i].name, dims[i - 1].name) == 0) {
            snprintf(why, why_size, "dimension '%s' given twice", dims[i].name);
            return -1;
        }
        used += (size_t)snprintf(out + used, size - used, "%s%s=%s", i ? "," : "", dims[i].name,
                                 dims[i].value);
    }
    if (used >= size) {
        snprintf(why, why_size, "the series id is longer than %zu bytes", size - 1);
        return -1;
    }
    return (int)used;
}

int metric_dim_parse(char *text, struct metric_dim *d)
{
    char *eq = strchr(text, '=');
    if (!eq || eq == text || !eq[1])
        return -1;
    *eq = '\0';
    d->name = text;
    d->value = eq + 1;
    return 0;
}
