#include "cli/metrics_cmd.h"

#include "cli/args.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/redis_managed.h"
#include "common/daemon.h"
#include "common/redis_sync.h"
#include "config/config.h"
#include "config/values.h"
#include "lb/discovery.h"
#include "metrics/series.h"
#include "metrics/store.h"

enum {
    EXIT_DONE = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_MISSING = 3,
    GET_WINDOW_S = 60,
    LIST_WINDOW_S = 10,
    QUOTED_SHOWN = 64, /* bytes of a command-line value quoted in a message */
    QUOTED_MAX = QUOTED_SHOWN * 4 + 8,
    NAME_SHOWN = 200, /* bytes of a name from Redis shown before "..." */
    ESCAPED_MAX = NAME_SHOWN * 4 + 8,
    NUMBER_MAX = 64,
    LINE_MAX_LEN = 1024,
    LIST_NAME_WIDTH_MAX = 40, /* a longer metric name does not widen every line */
};

static const int64_t WINDOW_MAX_MS = 31536000000LL; /* 365d, the longest rollup retention */
static const int64_t SECONDS_MAX = 253402300799LL;  /* 9999-12-31T23:59:59Z */
static const int64_t COUNT_MAX = 1000000000;
static const double MS_PER_S = 1000.0;

static const char USAGE_EXTRA[] =
    "\ncommands:\n"
    "  gantry metrics put NAME VALUE [--namespace NS] [--dimension K=V]... [--time UNIX_SECONDS]\n"
    "                     [--count N]\n"
    "      write one datapoint, as CloudWatch's put-metric-data: VALUE observed N times (--count,\n"
    "      default 1) in the second --time (default now). Writers of the same second add up.\n"
    "      Namespace: Custom unless --namespace. Prints nothing.\n"
    "  gantry metrics get NAME [--namespace NS] [--dimension K=V]... [--window DURATION]\n"
    "                     [--stat STAT] [--end UNIX_SECONDS] [--verbose]\n"
    "      one statistic of the series over the seconds [end - window, end), read as the\n"
    "      autoscaler reads it: the value alone on stdout (e.g. 51.2); --verbose adds a line\n"
    "      with the number of datapoints and samples. --window: whole seconds, up to 365d\n"
    "      (default 60s); the part older than metrics.retention is read from the 1-minute\n"
    "      rollups, whole minutes only. --end: default now, so the current second, still being\n"
    "      written, is left out. STAT: Sum, Average (default), Minimum, Maximum, SampleCount, or\n"
    "      pNN such as p99 or p99.9 (from latency histograms, in seconds). No datapoint in\n"
    "      the window: nothing on stdout, one line on stderr, exit status 3.\n"
    "      Namespace: --namespace, else AWS/ApplicationELB for gantry-lb's metrics\n"
    "      (RequestCount, TargetResponseTime, HTTPCode_Target_2XX_Count, ...), AWS/ECS for\n"
    "      CPUUtilization and MemoryUtilization, ECS/ContainerInsights for CpuUtilized,\n"
    "      CpuReserved, MemoryUtilized and MemoryReserved, else Custom.\n"
    "  gantry metrics [--window DURATION]\n"
    "      every series written to (gantry:m:series), grouped by namespace and dimensions, each\n"
    "      with its natural statistic over the last --window (10s): a per-second rate (Sum /\n"
    "      window) for counts of events (*Count) and ProcessedBytes; the Average for levels\n"
    "      (utilisations, host counts, ActiveConnectionCount) and other metrics; p50 and p99 in\n"
    "      ms for TargetResponseTime; - when there is no datapoint in the window.\n"
    "\n"
    "Dimensions: NAME=VALUE, at most 8 per series, in any order; a namespace, metric name,\n"
    "dimension name or value is 1 to 255 characters without '|', ',', '=' or control characters.\n"
    "Redis: --redis, else redis.url of the -c files, else the one `gantry up` runs (its socket\n"
    "up.run_dir/redis.sock, when there), else redis://127.0.0.1:6379. metrics.retention and\n"
    "metrics.rollup_retention of the -c files set the keys' expiry (put) and where reading\n"
    "switches to rollups (get, the listing): use the files the daemons use.\n"
    "Exit status: 0 done, 1 an invalid value (dimension, statistic, window, ...) or Redis\n"
    "unreachable, 2 usage error, 3 no datapoint in the window (get).\n";

/* gantry-lb's metrics (AWS/ApplicationELB), in the order the listing shows them. */
static const char *const ALB_METRICS[] = {
    "RequestCount",
    "RequestCountPerTarget",
    "HTTPCode_Target_2XX_Count",
    "HTTPCode_Target_3XX_Count",
    "HTTPCode_Target_4XX_Count",
    "HTTPCode_Target_5XX_Count",
    "HTTPCode_ELB_4XX_Count",
    "HTTPCode_ELB_5XX_Count",
    "TargetResponseTime",
    "ActiveConnectionCount",
    "NewConnectionCount",
    "ProcessedBytes",
    "TargetConnectionErrorCount",
    "HealthyHostCount",
    "UnHealthyHostCount",
};
static const char *const ECS_METRICS[] = {"CPUUtilization", "MemoryUtilization"};
static const char *const INSIGHTS_METRICS[] = {"CpuUtilized", "CpuReserved", "MemoryUtilized",
                                               "MemoryReserved"};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Index of name in list, or -1. */
static int find_name(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return (int)i;
    return -1;
}

/* get's namespace when --namespace is not given: where the daemons write a metric of that name,
 * so `gantry metrics get RequestCount --dimension ...` needs no namespace. */
static const char *default_namespace(const char *name)
{
    if (find_name(ALB_METRICS, COUNT_OF(ALB_METRICS), name) >= 0)
        return "AWS/ApplicationELB";
    if (find_name(ECS_METRICS, COUNT_OF(ECS_METRICS), name) >= 0)
        return "AWS/ECS";
    if (find_name(INSIGHTS_METRICS, COUNT_OF(INSIGHTS_METRICS), name) >= 0)
        return "ECS/ContainerInsights";
    return "Custom";
}

/* --- messages --- */

static const char *quoted(const char *s, char *out, size_t size)
{
    return lb_escape_text(s, strlen(s), QUOTED_SHOWN, out, size);
}

static int message(int status, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static int message(int status, const char *fmt, va_list ap)
{
    fprintf(stderr, "gantry metrics: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", status == EXIT_USAGE ? " (see gantry metrics --help)" : "");
    return status;
}

/* A value on the command line that cannot be used (exit 1). */
static int invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int invalid(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = message(EXIT_FAILED, fmt, ap);
    va_end(ap);
    return status;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = message(EXIT_USAGE, fmt, ap);
    va_end(ap);
    return status;
}

/* v in at most 15 significant digits (what a double holds exactly), without an exponent for
 * whole numbers: scripts compare it, and ten datapoints of 51.2 average to 51.2 this way, not to
 * 51.199999999999996 (the sum's rounding); 55 rather than 5.5e+01. */
static const char *number_text(double v, char *out, size_t size)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(out, size, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else
        snprintf(out, size, "%.15g", v);
    return out;
}

/* --- the command line --- */

enum sub { SUB_LIST = 1, SUB_PUT = 2, SUB_GET = 4 };

struct options {
    const char *ns, *time, *count, *window, *stat, *end;
    const char *dims[METRIC_MAX_DIMS];
    int n_dims; /* how many --dimension were given, those beyond METRIC_MAX_DIMS too */
    bool verbose;
};

static const char **option_slot(struct options *o, const char *name)
{
    if (strcmp(name, "namespace") == 0)
        return &o->ns;
    if (strcmp(name, "time") == 0)
        return &o->time;
    if (strcmp(name, "count") == 0)
        return &o->count;
    if (strcmp(name, "window") == 0)
        return &o->window;
    if (strcmp(name, "stat") == 0)
        return &o->stat;
    return &o->end;
}

static int on_option(void *ctx, const struct daemon_option *option, const char *arg)
{
    struct options *o = ctx;
    if (strcmp(option->name, "dimension") == 0) {
        if (o->n_dims < METRIC_MAX_DIMS)
            o->dims[o->n_dims] = arg;
        o->n_dims++;
    } else if (strcmp(option->name, "verbose") == 0) {
        o->verbose = true;
    } else {
        *option_slot(o, option->name) = arg;
    }
    return 0;
}

/* Which commands each option belongs to: one given to another is a usage error, not ignored. */
static int check_options(enum sub sub, const struct options *o)
{
    const struct {
        const char *name;
        bool given;
        unsigned subs;
        const char *of;
    } table[] = {
        {"--namespace", o->ns != NULL, SUB_PUT | SUB_GET, "put and get"},
        {"--dimension", o->n_dims > 0, SUB_PUT | SUB_GET, "put and get"},
        {"--time", o->time != NULL, SUB_PUT, "put"},
        {"--count", o->count != NULL, SUB_PUT, "put"},
        {"--window", o->window != NULL, SUB_GET | SUB_LIST, "get and the listing"},
        {"--stat", o->stat != NULL, SUB_GET, "get"},
        {"--end", o->end != NULL, SUB_GET, "get"},
        {"--verbose", o->verbose, SUB_GET, "get"},
    };
    for (size_t i = 0; i < COUNT_OF(table); i++)
        if (table[i].given && !(table[i].subs & sub))
            return usage_error("%s is an option of %s only", table[i].name, table[i].of);
    return EXIT_DONE;
}

/* --- what a command asks for --- */

struct request {
    enum sub sub;
    double value;
    struct metric_series series;
    char dim_text[METRIC_MAX_DIMS][METRIC_ID_MAX]; /* series.dims point in here */
    char id[METRIC_ID_MAX];
    int64_t time_s, count, window_s, end_s;
    struct metric_stat stat;
    bool verbose;
};

static int parse_seconds(const char *option, const char *text, int64_t *out)
{
    char q[QUOTED_MAX];
    if (value_parse_int(text, out) < 0 || *out < 0 || *out > SECONDS_MAX)
        return invalid("%s '%s': expected unix seconds, e.g. %lld", option,
                       quoted(text, q, sizeof q), (long long)time(NULL));
    return EXIT_DONE;
}

static int parse_window(const char *text, int64_t *seconds)
{
    char q[QUOTED_MAX];
    int64_t ms;
    if (value_parse_duration_ms(text, &ms) < 0 || ms < 1000 || ms % 1000 || ms > WINDOW_MAX_MS)
        return invalid("--window '%s': expected whole seconds from 1s to 365d, e.g. 60s or 5m",
                       quoted(text, q, sizeof q));
    *seconds = ms / 1000;
    return EXIT_DONE;
}

static int parse_value(const char *text, double *out)
{
    char q[QUOTED_MAX];
    char *end;
    *out = strtod(text, &end);
    if (end == text || *end || isspace((unsigned char)text[0]) || !isfinite(*out))
        return invalid("VALUE '%s': expected a finite number, e.g. 51.2",
                       quoted(text, q, sizeof q));
    return EXIT_DONE;
}

static int parse_count(const char *text, int64_t *out)
{
    char q[QUOTED_MAX];
    if (value_parse_int(text, out) < 0 || *out < 1 || *out > COUNT_MAX)
        return invalid("--count '%s': expected a whole number from 1 to %lld",
                       quoted(text, q, sizeof q), (long long)COUNT_MAX);
    return EXIT_DONE;
}

static int parse_stat(const char *text, struct metric_stat *out)
{
    char q[QUOTED_MAX];
    if (metric_stat_parse(text, out) < 0)
        return invalid("--stat '%s': expected Sum, Average, Minimum, Maximum, SampleCount or pNN "
                       "with 0 < NN <= 100, e.g. p99",
                       quoted(text, q, sizeof q));
    return EXIT_DONE;
}

/* The series' id from NAME, --namespace and the --dimension options. */
static int build_series(struct request *q, const char *name, const struct options *o)
{
    char text[QUOTED_MAX];
    if (o->n_dims > METRIC_MAX_DIMS)
        return invalid("%d --dimension options: a series has at most %d dimensions", o->n_dims,
                       METRIC_MAX_DIMS);
    for (int i = 0; i < o->n_dims; i++) {
        size_t n = strlen(o->dims[i]);
        if (n < sizeof q->dim_text[i])
            memcpy(q->dim_text[i], o->dims[i], n + 1);
        if (n >= sizeof q->dim_text[i] || metric_dim_parse(q->dim_text[i], &q->series.dims[i]))
            return invalid("--dimension '%s': expected NAME=VALUE, e.g. TargetGroup=web",
                           quoted(o->dims[i], text, sizeof text));
    }
    q->series.n_dims = o->n_dims;
    q->series.name = name;
    q->series.ns = o->ns ? o->ns : q->sub == SUB_GET ? default_namespace(name) : "Custom";
    char why[256];
    if (metric_series_id(&q->series, q->id, sizeof q->id, why, sizeof why) < 0)
        return invalid("invalid series: %s", why);
    return EXIT_DONE;
}

static int parse_put(struct request *q, char **operands, int n_ops, const struct options *o)
{
    if (n_ops != 3)
        return usage_error("put takes a metric name and a value: put NAME VALUE");
    int status;
    if ((status = build_series(q, operands[1], o)) != EXIT_DONE ||
        (status = parse_value(operands[2], &q->value)) != EXIT_DONE)
        return status;
    q->time_s = (int64_t)time(NULL);
    q->count = 1;
    if ((o->time && (status = parse_seconds("--time", o->time, &q->time_s)) != EXIT_DONE) ||
        (o->count && (status = parse_count(o->count, &q->count)) != EXIT_DONE))
        return status;
    if (!isfinite(q->value * (double)q->count))
        return invalid("VALUE times --count is too large a sum");
    return EXIT_DONE;
}

static int parse_get(struct request *q, char **operands, int n_ops, const struct options *o)
{
    if (n_ops != 2)
        return usage_error("get takes one metric name: get NAME");
    int status;
    if ((status = build_series(q, operands[1], o)) != EXIT_DONE)
        return status;
    q->window_s = GET_WINDOW_S;
    q->end_s = (int64_t)time(NULL);
    q->stat = (struct metric_stat){METRIC_AVERAGE, 0};
    q->verbose = o->verbose;
    if ((o->window && (status = parse_window(o->window, &q->window_s)) != EXIT_DONE) ||
        (o->stat && (status = parse_stat(o->stat, &q->stat)) != EXIT_DONE) ||
        (o->end && (status = parse_seconds("--end", o->end, &q->end_s)) != EXIT_DONE))
        return status;
    return EXIT_DONE;
}

static int parse_request(struct request *q, char **operands, int n_ops, const struct options *o)
{
    memset(q, 0, sizeof *q);
    q->sub = n_ops == 0                        ? SUB_LIST
             : strcmp(operands[0], "put") == 0 ? SUB_PUT
             : strcmp(operands[0], "get") == 0 ? SUB_GET
                                               : 0;
    if (!q->sub) {
        char text[QUOTED_MAX];
        return usage_error("unknown command '%s': expected put, get, or none for the listing",
                           quoted(operands[0], text, sizeof text));
    }
    int status = check_options(q->sub, o);
    if (status != EXIT_DONE)
        return status;
    if (q->sub == SUB_PUT)
        return parse_put(q, operands, n_ops, o);
    if (q->sub == SUB_GET)
        return parse_get(q, operands, n_ops, o);
    q->window_s = LIST_WINDOW_S;
    return o->window ? parse_window(o->window, &q->window_s) : EXIT_DONE;
}

/* --- put and get --- */

static int redis_failed(const struct redis_sync *r)
{
    fprintf(stderr, "gantry metrics: %s\n",
            r->error[0] ? r->error : "Redis did not take the command (out of memory?)");
    return EXIT_FAILED;
}

static int cmd_put(const struct request *q, struct redis_sync *r,
                   const struct metric_retention *retention)
{
    struct metric_batch batch;
    metric_batch_init(&batch, retention);
    double n = (double)q->count;
    metric_batch_value(&batch, q->id, q->time_s, q->value * n, n, q->value, q->value);
    int status = EXIT_DONE;
    if (batch.failed || batch.datapoints != 1) {
        fprintf(stderr, "gantry metrics: out of memory\n");
        status = EXIT_FAILED;
    } else if (metric_batch_send(&batch, r) < 0) {
        status = redis_failed(r);
    }
    metric_batch_free(&batch);
    return status;
}

static int cmd_get(const struct request *q, struct redis_sync *r,
                   const struct metric_retention *retention)
{
    int64_t start = q->end_s - q->window_s;
    struct metric_window w;
    if (metric_read_window(r, q->id, start, q->end_s, retention, &w) < 0)
        return redis_failed(r);
    char id[ESCAPED_MAX], number[NUMBER_MAX];
    lb_escape_text(q->id, strlen(q->id), NAME_SHOWN, id, sizeof id);
    double v;
    if (!metric_window_value(&w, q->stat, &v)) {
        bool values_only = q->stat.kind == METRIC_PERCENTILE && w.datapoints > 0;
        fprintf(stderr, "gantry metrics: no datapoint in the window [%lld, %lld) of %s%s\n",
                (long long)start, (long long)q->end_s, id,
                values_only ? " (it has values, but percentiles need latency histograms)" : "");
        return EXIT_MISSING;
    }
    printf("%s\n", number_text(v, number, sizeof number));
    if (q->verbose) {
        double samples = q->stat.kind == METRIC_PERCENTILE ? (double)w.hist.total : w.count;
        printf("%d datapoint%s (%s samples) in [%lld, %lld) of %s\n", w.datapoints,
               w.datapoints == 1 ? "" : "s", number_text(samples, number, sizeof number),
               (long long)start, (long long)q->end_s, id);
    }
    return EXIT_DONE;
}

/* --- the listing --- */

/* A series from gantry:m:series, its id cut into its parts. */
struct entry {
    const char *id; /* as stored */
    char *parts;    /* a copy of id, cut at the first two '|' */
    const char *ns, *name, *dims;
};

static int name_rank(const char *name)
{
    int i = find_name(ALB_METRICS, COUNT_OF(ALB_METRICS), name);
    if (i >= 0)
        return i;
    if ((i = find_name(ECS_METRICS, COUNT_OF(ECS_METRICS), name)) >= 0)
        return (int)COUNT_OF(ALB_METRICS) + i;
    if ((i = find_name(INSIGHTS_METRICS, COUNT_OF(INSIGHTS_METRICS), name)) >= 0)
        return (int)(COUNT_OF(ALB_METRICS) + COUNT_OF(ECS_METRICS)) + i;
    return INT32_MAX; /* others after the known ones, by name */
}

/* The dimensions the daemons write, from the most general to the most specific: a load
 * balancer holds target groups, which hold targets; a cluster runs services, which run tasks. */
static const char *const SCOPES[] = {"ClusterName", "LoadBalancer", "ServiceName",
                                     "TargetGroup", "Target",       "TaskId"};

/* The "NAME=VALUE" of dimension name in dims ("K1=V1,K2=V2"), its length in *len; NULL when the
 * series does not have it. */
static const char *find_dim(const char *dims, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = dims; *p;) {
        size_t part = strcspn(p, ",");
        if (part > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            *len = part;
            return p;
        }
        p += part;
        p += *p == ',';
    }
    return NULL;
}

static bool is_scope(const char *dim, size_t len)
{
    for (size_t i = 0; i < COUNT_OF(SCOPES); i++) {
        size_t n = strlen(SCOPES[i]);
        if (len > n && strncmp(dim, SCOPES[i], n) == 0 && dim[n] == '=')
            return true;
    }
    return false;
}

/* One scope's value in two series; a series without it first, so that a load balancer's block
 * comes before its target groups' and a group's before its targets'. */
static int compare_scope(const char *a_dims, const char *b_dims, const char *name)
{
    size_t la = 0, lb = 0;
    const char *a = find_dim(a_dims, name, &la), *b = find_dim(b_dims, name, &lb);
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* Blocks by namespace, then scope by scope from the most general, then the other dimensions;
 * in a block the known metrics in their usual order, then the rest by name. */
static int compare_entries(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    int c = strcmp(a->ns, b->ns);
    for (size_t i = 0; !c && i < COUNT_OF(SCOPES); i++)
        c = compare_scope(a->dims, b->dims, SCOPES[i]);
    if (!c)
        c = strcmp(a->dims, b->dims);
    if (!c) {
        int ra = name_rank(a->name), rb = name_rank(b->name);
        c = ra < rb ? -1 : ra > rb;
    }
    return c ? c : strcmp(a->name, b->name);
}

/* Cuts "NS|Name|dims"; an id without its two '|' (not written by metric_series_id) is shown
 * whole as the name, under the namespace "?". */
static int entry_init(struct entry *e, const char *id)
{
    e->id = id;
    if (!(e->parts = strdup(id)))
        return -1;
    char *bar1 = strchr(e->parts, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
    if (!bar2) {
        e->ns = "?";
        e->name = e->parts;
        e->dims = "";
        return 0;
    }
    *bar1 = *bar2 = '\0';
    e->ns = e->parts;
    e->name = bar1 + 1;
    e->dims = bar2 + 1;
    return 0;
}

/* A bounded line being written; what does not fit is cut. */
struct line {
    char s[LINE_MAX_LEN];
    size_t len;
};

static void line_add(struct line *l, const char *s, size_t n)
{
    if (n > sizeof l->s - 1 - l->len)
        n = sizeof l->s - 1 - l->len;
    memcpy(l->s + l->len, s, n);
    l->len += n;
    l->s[l->len] = '\0';
}

/* The index-th dimension of a title: the first names the block, the others are in
 * parentheses. */
static void title_add(struct line *title, const char *dim, size_t len, int index)
{
    static const char *const separators[] = {"  ", " (", ", "};
    line_add(title, separators[index < 2 ? index : 2], 2);
    line_add(title, dim, len);
}

/* "AWS/ApplicationELB  TargetGroup=web (LoadBalancer=gantry-lb)", escaped: the most specific
 * scope names the block, what it belongs to follows from the closest, then other dimensions. */
static const char *block_title(const struct entry *e, char *out, size_t size)
{
    struct line raw = {.len = 0};
    line_add(&raw, e->ns, strlen(e->ns));
    int shown = 0;
    for (size_t i = COUNT_OF(SCOPES); i-- > 0;) {
        size_t len;
        const char *dim = find_dim(e->dims, SCOPES[i], &len);
        if (dim)
            title_add(&raw, dim, len, shown++);
    }
    for (const char *p = e->dims; *p;) {
        size_t len = strcspn(p, ",");
        if (!is_scope(p, len))
            title_add(&raw, p, len, shown++);
        p += len;
        p += *p == ',';
    }
    if (shown > 1)
        line_add(&raw, ")", 1);
    return lb_escape_text(raw.s, raw.len, NAME_SHOWN, out, size);
}

enum shown { SHOWN_RATE, SHOWN_BYTES_RATE, SHOWN_PERCENT, SHOWN_AVERAGE, SHOWN_LATENCY };

/* The statistic an operator reads a metric by: how much per second for counts, the level for
 * gauges, the spread for latencies. */
static enum shown shown_as(const char *name)
{
    size_t n = strlen(name);
    if (strcmp(name, "TargetResponseTime") == 0)
        return SHOWN_LATENCY;
    /* levels, not counts of events: how many hosts, how many connections open */
    if (strcmp(name, "HealthyHostCount") == 0 || strcmp(name, "UnHealthyHostCount") == 0 ||
        strcmp(name, "ActiveConnectionCount") == 0)
        return SHOWN_AVERAGE;
    if (strcmp(name, "ProcessedBytes") == 0)
        return SHOWN_BYTES_RATE;
    if (n >= 11 && strcmp(name + n - 11, "Utilization") == 0)
        return SHOWN_PERCENT;
    if (n >= 5 && strcmp(name + n - 5, "Count") == 0)
        return SHOWN_RATE;
    return SHOWN_AVERAGE;
}

/* One decimal, or two significant digits for what one decimal shows as 0.0. */
static const char *short_text(double v, char *out, size_t size)
{
    snprintf(out, size, v != 0 && fabs(v) < 0.05 ? "%.2g" : "%.1f", v);
    return out;
}

static void latency_text(const struct metric_window *w, char *out, size_t size)
{
    double p50, p99;
    char a[NUMBER_MAX], b[NUMBER_MAX];
    if (!metric_window_value(w, (struct metric_stat){METRIC_PERCENTILE, 0.5}, &p50) ||
        !metric_window_value(w, (struct metric_stat){METRIC_PERCENTILE, 0.99}, &p99)) {
        snprintf(out, size, "-");
        return;
    }
    snprintf(out, size, "p50 %s ms  p99 %s ms", short_text(p50 * MS_PER_S, a, sizeof a),
             short_text(p99 * MS_PER_S, b, sizeof b));
}

/* "250.0 KiB/s": bytes per second in the largest binary unit that keeps the number >= 1. */
static void bytes_rate_text(double v, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (fabs(v) >= 1024 && u + 1 < COUNT_OF(units)) {
        v /= 1024;
        u++;
    }
    char number[NUMBER_MAX];
    snprintf(out, size, "%s %s/s", short_text(v, number, sizeof number), units[u]);
}

static void value_text(const struct metric_window *w, const char *name, int64_t window_s, char *out,
                       size_t size)
{
    enum shown shown = shown_as(name);
    if (shown == SHOWN_LATENCY) {
        latency_text(w, out, size);
        return;
    }
    bool rate = shown == SHOWN_RATE || shown == SHOWN_BYTES_RATE;
    double v;
    char number[NUMBER_MAX];
    if (!metric_window_value(w, (struct metric_stat){rate ? METRIC_SUM : METRIC_AVERAGE, 0}, &v)) {
        snprintf(out, size, "-");
        return;
    }
    if (rate)
        v /= (double)window_s;
    if (shown == SHOWN_BYTES_RATE) {
        bytes_rate_text(v, out, size);
        return;
    }
    static const char *const units[] = {"/s", "", " %", "", ""};
    snprintf(out, size, "%s%s", short_text(v, number, sizeof number), units[shown]);
}

static const char *name_text(const struct entry *e, char *out, size_t size)
{
    return lb_escape_text(e->name, strlen(e->name), NAME_SHOWN, out, size);
}

/* The widest name as shown (escaped), so that every value starts in one column. */
static int name_width(const struct entry *entries, size_t n)
{
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        char text[ESCAPED_MAX];
        int len = (int)strlen(name_text(&entries[i], text, sizeof text));
        width = len > width ? len : width;
    }
    return width < LIST_NAME_WIDTH_MAX ? width : LIST_NAME_WIDTH_MAX;
}

static void print_header(const struct redis_sync *r, int64_t window_s, int64_t end)
{
    char window[32], clock[16] = "?";
    time_t t = (time_t)end;
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    printf("last %s to %s (local time), Redis at %s\n",
           value_format_duration(window_s * 1000, window, sizeof window), clock, r->url_text);
}

/* The blocks; -1 when Redis failed on the way (the lines printed so far stay). */
static int print_entries(struct redis_sync *r, const struct entry *entries, size_t n,
                         const struct metric_retention *retention, int64_t window_s)
{
    /* the second that just ended may not be written yet (writers flush after it): a window
     * ending there would divide a rate by a second without data */
    int64_t end = (int64_t)time(NULL) - 1;
    int width = name_width(entries, n);
    print_header(r, window_s, end);
    for (size_t i = 0; i < n; i++) {
        const struct entry *e = &entries[i];
        char text[ESCAPED_MAX], value[LINE_MAX_LEN];
        if (i == 0 || strcmp(e->ns, entries[i - 1].ns) || strcmp(e->dims, entries[i - 1].dims))
            printf("\n%s\n", block_title(e, text, sizeof text));
        struct metric_window w;
        if (metric_read_window(r, e->id, end - window_s, end, retention, &w) < 0)
            return -1;
        value_text(&w, e->name, window_s, value, sizeof value);
        printf("  %-*s  %s\n", width, name_text(e, text, sizeof text), value);
    }
    return 0;
}

static int cmd_list(struct redis_sync *r, const struct metric_retention *retention,
                    int64_t window_s)
{
    char **ids = metric_list_ids(r);
    if (!ids)
        return redis_failed(r);
    size_t n = 0;
    while (ids[n])
        n++;
    struct entry *entries = calloc(n ? n : 1, sizeof *entries);
    int status = entries ? EXIT_DONE : EXIT_FAILED;
    for (size_t i = 0; entries && i < n && status == EXIT_DONE; i++)
        if (entry_init(&entries[i], ids[i]) < 0)
            status = EXIT_FAILED;
    if (status != EXIT_DONE) {
        fprintf(stderr, "gantry metrics: out of memory\n");
    } else if (n == 0) {
        printf("no metric series in Redis at %s (nothing has written metrics yet)\n", r->url_text);
    } else {
        qsort(entries, n, sizeof *entries, compare_entries);
        if (print_entries(r, entries, n, retention, window_s) < 0)
            status = redis_failed(r);
    }
    for (size_t i = 0; entries && i < n; i++)
        free(entries[i].parts);
    free(entries);
    metric_free_ids(ids);
    return status;
}

/* --- the command --- */

static int run(const struct request *q, const struct daemon_args *args)
{
    struct redis_url url;
    char why[160], text[QUOTED_MAX];
    if (args->redis_url && value_parse_redis_url(args->redis_url, &url, why, sizeof why) < 0)
        return usage_error("--redis '%s': %s", quoted(args->redis_url, text, sizeof text), why);
    struct gantry_config cfg;
    int status = config_daemon_start(&cfg, args, "gantry");
    if (status >= 0)
        return status;
    if (!cfg.redis.url.addr.len)
        redis_managed_default_url(cfg.up.run_dir, &cfg.redis.url);
    const struct metric_retention retention = {cfg.metrics.retention_ms / 1000,
                                               cfg.metrics.rollup_retention_ms / 1000};
    struct redis_sync r;
    redis_sync_init(&r, &cfg.redis.url, cfg.redis.connect_timeout_ms);
    if (redis_sync_connect(&r) < 0)
        status = redis_failed(&r);
    else if (q->sub == SUB_PUT)
        status = cmd_put(q, &r, &retention);
    else if (q->sub == SUB_GET)
        status = cmd_get(q, &r, &retention);
    else
        status = cmd_list(&r, &retention, q->window_s);
    redis_sync_close(&r);
    config_free(&cfg);
    if (fflush(stdout) != 0 && status == EXIT_DONE)
        status = EXIT_FAILED;
    return status;
}

/* Options may follow the operands (`get CPUUtilization --window 5m`); "-3" is a VALUE
 * (put NAME -3), not an option. */
static const char *const VALUE_OPTIONS[] = {
    "-c",          "--config", "--redis", "--log-level", "--listen", "--admin", "--namespace",
    "--dimension", "--time",   "--count", "--window",    "--stat",   "--end",   NULL};

int metrics_cmd_main(int argc, char **argv)
{
    static const struct daemon_option extra[] = {
        {"namespace", true, "--namespace NS        put, get: the series' namespace (see above)"},
        {"dimension", true, "--dimension K=V       put, get: a dimension (repeatable)"},
        {"time", true, "--time UNIX_SECONDS   put: the datapoint's second (now)"},
        {"count", true, "--count N             put: how many times VALUE was observed (1)"},
        {"window", true, "--window DURATION     get (60s), the listing (10s): the window"},
        {"stat", true, "--stat STAT           get: the statistic (Average)"},
        {"end", true, "--end UNIX_SECONDS    get: the window's end, excluded (now)"},
        {"verbose", false, "--verbose             get: also the number of datapoints"},
        {NULL, false, NULL},
    };
    struct options o;
    memset(&o, 0, sizeof o);
    const struct daemon_usage usage = {
        .name = "gantry metrics",
        .summary = "write, read and list metrics in Redis (put, get, or a listing)",
        .flags = DAEMON_TAKES_REDIS,
        .extra = USAGE_EXTRA,
        .options = extra,
        .on_option = on_option,
        .ctx = &o,
    };
    char **opts = calloc((size_t)argc + 1, sizeof *opts);
    char **operands = calloc((size_t)argc + 1, sizeof *operands);
    struct request *q = malloc(sizeof *q);
    int status = EXIT_FAILED;
    if (!opts || !operands || !q) {
        fprintf(stderr, "gantry metrics: out of memory\n");
    } else {
        int n_opts, n_ops;
        cli_split_args(argc, argv, VALUE_OPTIONS, true, opts, &n_opts, operands, &n_ops);
        struct daemon_args args;
        status = daemon_args_parse(n_opts, opts, &usage, &args);
        if (status == DAEMON_ARGS_GO_ON &&
            (status = parse_request(q, operands, n_ops, &o)) == EXIT_DONE)
            status = run(q, &args);
    }
    free(q);
    free(opts);
    free(operands);
    return status;
}
