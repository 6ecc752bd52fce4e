#include "metrics/store.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The write script: ARGV = seconds' TTL, rollups' TTL, then records of either
 *   "v" ID SECOND SUM COUNT MIN MAX     a datapoint
 *   "h" ID SECOND "B:C B:C ..."         a histogram
 * Each is merged into the second's field (summing what other writers wrote for the same second)
 * and into the minute's rollup; keys get their expiry; gantry:m:series (a sorted set) scores each
 * series by its last second and forgets those whose rollups have expired too. */
static const char write_script[] =
    "local ttl, rttl = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local expiry = {}\n"
    "local function merge_v(key, field, s, n, lo, hi, t)\n"
    "  local old = redis.call('HGET', key, field)\n"
    "  if old then\n"
    "    local a, b, c, d = string.match(old, '^(%S+) (%S+) (%S+) (%S+)$')\n"
    "    if a then a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)\n"
    "    else a = tonumber(old); b, c, d = 1, a, a end\n"
    "    if a then s = s + a; n = n + b; lo = math.min(lo, c); hi = math.max(hi, d) end\n"
    "  end\n"
    "  local v\n"
    "  if n == 1 and lo == s and hi == s then v = string.format('%.17g', s)\n"
    "  else v = string.format('%.17g %.17g %.17g %.17g', s, n, lo, hi) end\n"
    "  redis.call('HSET', key, field, v)\n"
    "  expiry[key] = t\n"
    "end\n"
    "local function merge_h(key, field, text, t)\n"
    "  local counts = {}\n"
    "  local old = redis.call('HGET', key, field)\n"
    "  for _, src in ipairs({old or '', text}) do\n"
    "    for b, c in string.gmatch(src, '(%d+):(%d+)') do\n"
    "      b = tonumber(b); counts[b] = (counts[b] or 0) + tonumber(c)\n"
    "    end\n"
    "  end\n"
    "  local keys = {}\n"
    "  for b in pairs(counts) do keys[#keys + 1] = b end\n"
    "  table.sort(keys)\n"
    "  local parts = {}\n"
    "  for i, b in ipairs(keys) do parts[i] = b .. ':' .. string.format('%d', counts[b]) end\n"
    "  redis.call('HSET', key, field, table.concat(parts, ' '))\n"
    "  expiry[key] = t\n"
    "end\n"
    "local seen = {}\n"
    "local i = 3\n"
    "while i <= #ARGV do\n"
    "  local kind, id, ts = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])\n"
    "  local minute, hour = ts - ts % 60, ts - ts % 3600\n"
    "  local skey = 'gantry:m:s:' .. id .. ':' .. minute\n"
    "  local rkey = 'gantry:m:r:' .. id .. ':' .. hour\n"
    "  local sf, rf = tostring(ts - minute), tostring((minute - hour) / 60)\n"
    "  if kind == 'v' then\n"
    "    local s, n = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])\n"
    "    local lo, hi = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])\n"
    "    merge_v(skey, sf, s, n, lo, hi, ttl)\n"
    "    merge_v(rkey, rf, s, n, lo, hi, rttl)\n"
    "    i = i + 7\n"
    "  else\n"
    "    merge_h(skey, 'h' .. sf, ARGV[i + 3], ttl)\n"
    "    merge_h(rkey, 'h' .. rf, ARGV[i + 3], rttl)\n"
    "    i = i + 4\n"
    "  end\n"
    "  if not seen[id] or seen[id] < ts then seen[id] = ts end\n"
    "end\n"
    "for key, t in pairs(expiry) do redis.call('EXPIRE', key, t) end\n"
    "local newest = 0\n"
    "for id, ts in pairs(seen) do\n"
    "  redis.call('ZADD', 'gantry:m:series', 'GT', ts, id)\n"
    "  if ts > newest then newest = ts end\n"
    "end\n"
    "if newest > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', 'gantry:m:series', '-inf', '(' .. (newest - rttl))\n"
    "end\n"
    "return #ARGV\n";

/* --- writing --- */

static void push(struct metric_batch *b, const char *text, size_t len)
{
    if (b->failed)
        return;
    if (b->argc == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        char **argv = realloc(b->argv, cap * sizeof *argv);
        size_t *lens = argv ? realloc(b->argvlen, cap * sizeof *lens) : NULL;
        if (argv)
            b->argv = argv;
        if (!argv || !lens) {
            b->failed = true;
            return;
        }
        b->argvlen = lens;
        b->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        b->failed = true;
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    b->argv[b->argc] = copy;
    b->argvlen[b->argc++] = len;
}

static void push_str(struct metric_batch *b, const char *text)
{
    push(b, text, strlen(text));
}

static void push_num(struct metric_batch *b, double v)
{
    char text[40];
    int n = snprintf(text, sizeof text, "%.17g", v);
    push(b, text, (size_t)n);
}

static void push_int(struct metric_batch *b, int64_t v)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", (long long)v);
    push(b, text, (size_t)n);
}

static void clear_args(struct metric_batch *b)
{
    for (size_t i = 0; i < b->argc; i++)
        free(b->argv[i]);
    b->argc = 0;
}

void metric_batch_reset(struct metric_batch *b, const struct metric_retention *retention)
{
    clear_args(b);
    b->datapoints = 0;
    b->failed = false;
    push_str(b, "EVAL");
    push_str(b, write_script);
    push_str(b, "0");
    /* a minute's key lives as long as its last second must, and a little more */
    push_int(b, retention->seconds_s + 60);
    push_int(b, retention->minutes_s + 3600);
}

void metric_batch_init(struct metric_batch *b, const struct metric_retention *retention)
{
    memset(b, 0, sizeof *b);
    metric_batch_reset(b, retention);
}

void metric_batch_free(struct metric_batch *b)
{
    clear_args(b);
    free(b->argv);
    free(b->argvlen);
    memset(b, 0, sizeof *b);
}

void metric_batch_value(struct metric_batch *b, const char *series_id, int64_t second, double sum,
                        double count, double min, double max)
{
    if (!isfinite(sum) || !isfinite(count) || !isfinite(min) || !isfinite(max) || count <= 0)
        return; /* nothing Redis could merge: such a datapoint is dropped, not stored */
    push_str(b, "v");
    push_str(b, series_id);
    push_int(b, second);
    push_num(b, sum);
    push_num(b, count);
    push_num(b, min);
    push_num(b, max);
    b->datapoints++;
}

void metric_batch_sample(struct metric_batch *b, const char *series_id, int64_t second,
                         double value)
{
    metric_batch_value(b, series_id, second, value, 1, value, value);
}

void metric_batch_hist(struct metric_batch *b, const char *series_id, int64_t second,
                       const struct metric_hist *h)
{
    if (h->total == 0)
        return;
    char text[METRIC_HIST_BUCKETS * 24];
    int n = metric_hist_format(h, text, sizeof text);
    if (n < 0) {
        b->failed = true;
        return;
    }
    push_str(b, "h");
    push_str(b, series_id);
    push_int(b, second);
    push(b, text, (size_t)n);
    b->datapoints++;
}

bool metric_batch_command(const struct metric_batch *b, int *argc, const char ***argv,
                          const size_t **argvlen)
{
    if (b->failed || b->datapoints == 0)
        return false;
    *argc = (int)b->argc;
    *argv = (const char **)b->argv;
    *argvlen = b->argvlen;
    return true;
}

int metric_batch_send(struct metric_batch *b, struct redis_sync *r)
{
    int argc;
    const char **argv;
    const size_t *lens;
    if (!metric_batch_command(b, &argc, &argv, &lens))
        return b->failed ? -1 : 0;
    redisReply *reply = redis_sync_argv(r, argc, argv, lens);
    if (!reply)
        return -1;
    freeReplyObject(reply);
    return 0;
}

/* --- reading --- */

int metric_stat_parse(const char *text, struct metric_stat *out)
{
    static const struct {
        const char *name;
        enum metric_stat_kind kind;
    } names[] = {{"Sum", METRIC_SUM},
                 {"Average", METRIC_AVERAGE},
                 {"Minimum", METRIC_MINIMUM},
                 {"Maximum", METRIC_MAXIMUM},
                 {"SampleCount", METRIC_SAMPLE_COUNT}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(text, names[i].name) == 0) {
            *out = (struct metric_stat){names[i].kind, 0};
            return 0;
        }
    }
    if (text[0] != 'p' || !text[1])
        return -1;
    for (const char *c = text + 1; *c; c++) /* digits and a point: not "p 50", "p+5", "p1e1" */
        if (!isdigit((unsigned char)*c) && *c != '.')
            return -1;
    char *end;
    double p = strtod(text + 1, &end);
    if (*end || !(p > 0 && p <= 100))
        return -1;
    *out = (struct metric_stat){METRIC_PERCENTILE, p / 100.0};
    return 0;
}

static void add_point(struct metric_window *w, double s, double n, double lo, double hi)
{
    if (w->datapoints == 0 || lo < w->min)
        w->min = lo;
    if (w->datapoints == 0 || hi > w->max)
        w->max = hi;
    w->sum += s;
    w->count += n;
    w->datapoints++;
}

/* A stored datapoint ("S" or "S N LO HI"); false when it does not read. */
static bool parse_point(const char *text, double *s, double *n, double *lo, double *hi)
{
    char *end;
    *s = strtod(text, &end);
    if (end == text)
        return false;
    if (!*end) {
        *n = 1;
        *lo = *hi = *s;
        return true;
    }
    return sscanf(end, " %lf %lf %lf", n, lo, hi) == 3 && *n > 0;
}

/* Merges the fields of one hash whose field numbers are units of `unit` seconds from base, for
 * the part in [start, end). */
static void merge_hash(struct metric_window *w, const redisReply *r, int64_t base, int unit,
                       int64_t start, int64_t end)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *field = r->element[i]->str, *value = r->element[i + 1]->str;
        if (!field || !value)
            continue;
        bool hist = field[0] == 'h';
        char *endp;
        long k = strtol(field + hist, &endp, 10);
        int64_t t = base + (int64_t)k * unit;
        if (*endp || endp == field + hist || t < start || t + unit > end)
            continue;
        if (hist) {
            if (metric_hist_parse_add(&w->hist, value) == 0)
                w->has_hist = true;
            continue;
        }
        double s, n, lo, hi;
        if (parse_point(value, &s, &n, &lo, &hi))
            add_point(w, s, n, lo, hi);
    }
}

/* HGETALL of each key of [from, to) in steps of `step` seconds, pipelined. */
static int read_hashes(struct redis_sync *r, const char *prefix, const char *id, int64_t from,
                       int64_t to, int step, int unit, int64_t start, int64_t end,
                       struct metric_window *w)
{
    if (from >= to)
        return 0;
    if (redis_sync_connect(r) < 0)
        return -1;
    size_t n = 0;
    for (int64_t t = from; t < to; t += step, n++) {
        if (redisAppendCommand(r->c, "HGETALL %s%s:%lld", prefix, id, (long long)t) != REDIS_OK) {
            snprintf(r->error, sizeof r->error, "cannot send to Redis at %s: out of memory",
                     r->url_text);
            redis_sync_close(r);
            return -1;
        }
    }
    int64_t t = from;
    for (size_t i = 0; i < n; i++, t += step) {
        void *out = NULL;
        if (redisGetReply(r->c, &out) != REDIS_OK || !out) {
            snprintf(r->error, sizeof r->error, "Redis at %s did not answer", r->url_text);
            redis_sync_close(r);
            return -1;
        }
        merge_hash(w, out, t, unit, start, end);
        freeReplyObject(out);
    }
    return 0;
}

int metric_read_window(struct redis_sync *r, const char *series_id, int64_t start, int64_t end,
                       const struct metric_retention *retention, struct metric_window *out)
{
    memset(out, 0, sizeof *out);
    if (end <= start)
        return 0;
    /* seconds older than the 1-second retention come from the rollups, whole minutes only */
    int64_t now = (int64_t)time(NULL);
    int64_t split = now - retention->seconds_s;
    split -= ((split % 60) + 60) % 60;
    if (split < start)
        split = start;
    if (split > end)
        split = end; /* a window that ends before the retention's split: rollups up to end only */
    if (split > start) {
        int64_t first_hour = start - ((start % 3600) + 3600) % 3600;
        if (read_hashes(r, "gantry:m:r:", series_id, first_hour, split, 3600, 60, start, split,
                        out) < 0)
            return -1;
    }
    int64_t first_minute = split - ((split % 60) + 60) % 60;
    return read_hashes(r, "gantry:m:s:", series_id, first_minute, end, 60, 1, split, end, out);
}

bool metric_window_value(const struct metric_window *w, struct metric_stat stat, double *out)
{
    if (stat.kind == METRIC_PERCENTILE) {
        if (!w->has_hist || w->hist.total == 0)
            return false;
        /* histograms count microseconds; percentiles come back in seconds, the unit of the
         * latency values written beside them (TargetResponseTime, as ALB) */
        *out = metric_hist_quantile(&w->hist, stat.q) / 1e6;
        return true;
    }
    if (w->datapoints == 0)
        return false;
    switch (stat.kind) {
    case METRIC_SUM:
        *out = w->sum;
        break;
    case METRIC_AVERAGE:
        *out = w->count > 0 ? w->sum / w->count : 0;
        break;
    case METRIC_MINIMUM:
        *out = w->min;
        break;
    case METRIC_MAXIMUM:
        *out = w->max;
        break;
    case METRIC_SAMPLE_COUNT:
        *out = w->count;
        break;
    default:
        return false;
    }
    return true;
}

char **metric_list_ids(struct redis_sync *r)
{
    redisReply *reply = redis_sync_command(r, "ZRANGE gantry:m:series 0 -1");
    if (!reply)
        return NULL;
    size_t n = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
    char **ids = calloc(n + 1, sizeof *ids);
    for (size_t i = 0, k = 0; ids && i < n; i++)
        if (reply->element[i]->str && (ids[k] = strdup(reply->element[i]->str)) != NULL)
            k++;
    freeReplyObject(reply);
    if (!ids)
        snprintf(r->error, sizeof r->error, "out of memory");
    return ids;
}

void metric_free_ids(char **ids)
{
    for (size_t i = 0; ids && ids[i]; i++)
        free(ids[i]);
    free(ids);
}
