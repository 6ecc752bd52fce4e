/* The metric store's pure parts: series ids (canonical order, every refusal), `--dimension`
 * parsing, the latency histograms (bucket round trip, quantiles of known distributions, the text
 * form stored in Redis, merging), statistic names, the statistic of a window, and the arguments
 * of the write command (the keys' expiry). No Redis: tests/system/test_metrics_cli.py reads and
 * writes a real one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/hist.h"
#include "metrics/series.h"
#include "metrics/store.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { US_PER_MS = 1000, US_PER_S = 1000000 };

/* ---- Helpers ----------------------------------------------------------------------------- */

static struct metric_series series2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    return (struct metric_series){"AWS/ApplicationELB", "RequestCount", {{k1, v1}, {k2, v2}}, 2};
}

/* The id of s, failing the test when it is refused. */
static void id_of(const struct metric_series *s, char *out, size_t size)
{
    char why[256] = "";
    int n = metric_series_id(s, out, size, why, sizeof why);
    if (n < 0)
        fail_msg("series refused: %s", why);
    assert_int_equal((size_t)n, strlen(out));
}

/* Asserts s is refused, with a reason containing `reason`. */
static void assert_refused(const struct metric_series *s, const char *reason, const char *what)
{
    char out[METRIC_ID_MAX], why[256] = "";
    int n = metric_series_id(s, out, sizeof out, why, sizeof why);
    if (n >= 0)
        fail_msg("%s: accepted as '%s'", what, out);
    if (!strstr(why, reason))
        fail_msg("%s: refused because '%s', expected a reason with '%s'", what, why, reason);
}

/* A string of n copies of c. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static double relative_error(double got, double want)
{
    return fabs(got - want) / want;
}

/* ---- Series ids -------------------------------------------------------------------------- */

static void test_series_id_canonical(void **state)
{
    (void)state;
    char a[METRIC_ID_MAX], b[METRIC_ID_MAX];
    struct metric_series s1 = series2("TargetGroup", "web", "LoadBalancer", "gantry-lb");
    struct metric_series s2 = series2("LoadBalancer", "gantry-lb", "TargetGroup", "web");
    id_of(&s1, a, sizeof a);
    id_of(&s2, b, sizeof b);
    assert_string_equal(a,
                        "AWS/ApplicationELB|RequestCount|LoadBalancer=gantry-lb,TargetGroup=web");
    assert_string_equal(a, b);

    /* three dimensions in every order give one id */
    static const int orders[][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    static const struct metric_dim dims[] = {{"b", "2"}, {"c", "3"}, {"a", "1"}};
    for (size_t i = 0; i < N(orders); i++) {
        struct metric_series s = {"Custom", "m", {{0}}, 3};
        for (int k = 0; k < 3; k++)
            s.dims[k] = dims[orders[i][k]];
        id_of(&s, a, sizeof a);
        assert_string_equal(a, "Custom|m|a=1,b=2,c=3");
    }

    /* no dimension; the caller's dimensions are left in their order */
    struct metric_series none = {"Custom", "queue_depth", {{0}}, 0};
    id_of(&none, a, sizeof a);
    assert_string_equal(a, "Custom|queue_depth|");
    id_of(&s1, a, sizeof a);
    assert_string_equal(s1.dims[0].name, "TargetGroup");

    /* names are compared bytewise: case matters, and a prefix sorts first */
    struct metric_series cased = series2("b", "1", "B", "2");
    id_of(&cased, a, sizeof a);
    assert_string_equal(a, "AWS/ApplicationELB|RequestCount|B=2,b=1");
    struct metric_series prefix = series2("ab", "1", "a", "2");
    id_of(&prefix, a, sizeof a);
    assert_string_equal(a, "AWS/ApplicationELB|RequestCount|a=2,ab=1");
}

static void test_series_id_refuses_reserved_characters(void **state)
{
    (void)state;
    static const char *const bad[] = {"a|b",  "a,b",  "a=b", "a\x01", "\x1f", "a\nb",
                                      "a\tb", "\x7f", "|",   ",",     "="};
    for (size_t i = 0; i < N(bad); i++) {
        char what[64];
        struct metric_series s = series2("TargetGroup", "web", "LoadBalancer", "lb");
        snprintf(what, sizeof what, "namespace #%zu", i);
        s.ns = bad[i];
        assert_refused(&s, "holds", what);

        s = series2("TargetGroup", "web", "LoadBalancer", "lb");
        snprintf(what, sizeof what, "name #%zu", i);
        s.name = bad[i];
        assert_refused(&s, "holds", what);

        s = series2("TargetGroup", "web", "LoadBalancer", "lb");
        snprintf(what, sizeof what, "dimension name #%zu", i);
        s.dims[1].name = bad[i];
        assert_refused(&s, "holds", what);

        s = series2("TargetGroup", "web", "LoadBalancer", "lb");
        snprintf(what, sizeof what, "dimension value #%zu", i);
        s.dims[0].value = bad[i];
        assert_refused(&s, "holds", what);
    }
    /* what ids do not reserve: spaces, punctuation, UTF-8 */
    char id[METRIC_ID_MAX];
    struct metric_series ok = {"My App/v2", "latency p99 (ms)", {{"host", "caf\xc3\xa9:8080"}}, 1};
    id_of(&ok, id, sizeof id);
    assert_string_equal(id, "My App/v2|latency p99 (ms)|host=caf\xc3\xa9:8080");
}

static void test_series_id_refuses_empty_parts(void **state)
{
    (void)state;
    struct metric_series s = series2("TargetGroup", "web", "LoadBalancer", "lb");
    s.ns = "";
    assert_refused(&s, "empty", "empty namespace");
    s = series2("TargetGroup", "web", "LoadBalancer", "lb");
    s.name = NULL;
    assert_refused(&s, "empty", "no name");
    s = series2("TargetGroup", "", "LoadBalancer", "lb");
    assert_refused(&s, "empty", "empty dimension value");
    s = series2("TargetGroup", "web", "", "lb");
    assert_refused(&s, "empty", "empty dimension name");
}

static void test_series_id_lengths(void **state)
{
    (void)state;
    char *max = repeat('x', METRIC_NAME_MAX), *over = repeat('x', METRIC_NAME_MAX + 1);
    char id[METRIC_ID_MAX];
    struct metric_series s = {max, max, {{max, max}}, 1};
    id_of(&s, id, sizeof id);
    assert_int_equal(strlen(id), 4 * METRIC_NAME_MAX + 3);

    const char **parts[] = {&s.ns, &s.name, &s.dims[0].name, &s.dims[0].value};
    for (size_t i = 0; i < N(parts); i++) {
        s = (struct metric_series){max, max, {{max, max}}, 1};
        *parts[i] = over;
        assert_refused(&s, "longer than 255", "a part of 256 characters");
    }

    /* every part within its limit, the whole beyond METRIC_ID_MAX */
    struct metric_series big = {max, max, {{0}}, METRIC_MAX_DIMS};
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int i = 0; i < METRIC_MAX_DIMS; i++)
        big.dims[i] = (struct metric_dim){names[i], max};
    assert_refused(&big, "longer than", "an id beyond METRIC_ID_MAX");

    /* the caller's buffer is the limit, to the byte */
    struct metric_series small = {"Custom", "m", {{"k", "v"}}, 1};
    char out[sizeof "Custom|m|k=v"], why[128];
    assert_int_equal(metric_series_id(&small, out, sizeof out, why, sizeof why), 12);
    assert_int_equal(metric_series_id(&small, out, sizeof out - 1, why, sizeof why), -1);
    free(max);
    free(over);
}

static void test_series_id_dimension_count(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    struct metric_series s = {"Custom", "m", {{0}}, METRIC_MAX_DIMS};
    for (int i = 0; i < METRIC_MAX_DIMS; i++)
        s.dims[i] = (struct metric_dim){names[i], "1"};
    char id[METRIC_ID_MAX];
    id_of(&s, id, sizeof id);
    assert_string_equal(id, "Custom|m|a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1");
    s.n_dims = METRIC_MAX_DIMS + 1;
    assert_refused(&s, "at most 8", "nine dimensions");
    s.n_dims = -1;
    assert_refused(&s, "at most 8", "a negative count");
}

static void test_series_id_refuses_duplicates(void **state)
{
    (void)state;
    struct metric_series s = series2("TargetGroup", "web", "TargetGroup", "api");
    assert_refused(&s, "given twice", "one name twice");
    s = series2("TargetGroup", "web", "TargetGroup", "web");
    assert_refused(&s, "given twice", "one dimension twice");
    /* apart in the caller's order, next to each other once sorted */
    struct metric_series three = {"Custom", "m", {{"b", "1"}, {"a", "1"}, {"b", "2"}}, 3};
    assert_refused(&three, "given twice", "duplicates apart");
}

static void test_dim_parse(void **state)
{
    (void)state;
    char text[] = "TargetGroup=web";
    struct metric_dim d;
    assert_int_equal(metric_dim_parse(text, &d), 0);
    assert_string_equal(d.name, "TargetGroup");
    assert_string_equal(d.value, "web");

    /* the value runs to the end; metric_series_id then refuses its '=' */
    char twice[] = "K=V=W";
    assert_int_equal(metric_dim_parse(twice, &d), 0);
    assert_string_equal(d.name, "K");
    assert_string_equal(d.value, "V=W");
    struct metric_series s = {"Custom", "m", {d}, 1};
    assert_refused(&s, "holds", "a value with '='");

    static const char *const bad[] = {"", "K", "=V", "K=", "="};
    for (size_t i = 0; i < N(bad); i++) {
        char copy[8];
        snprintf(copy, sizeof copy, "%s", bad[i]);
        if (metric_dim_parse(copy, &d) == 0)
            fail_msg("'%s' parsed as '%s' = '%s'", bad[i], d.name, d.value);
    }
}

/* ---- Histograms -------------------------------------------------------------------------- */

/* Every microsecond value up to 100 ms, then steps of 0.1 % up to 100 s: a bucket's value is
 * within 4.5 % of every value it holds (hist.h: "within about 4.4 % (half a bucket)"). */
static void test_hist_round_trip(void **state)
{
    (void)state;
    double worst = 0;
    int64_t worst_us = 0;
    for (int64_t us = 1; us <= 100 * (int64_t)US_PER_S;
         us += us < 100 * US_PER_MS ? 1 : us / 1000) {
        int b = metric_hist_bucket(us);
        assert_in_range(b, 1, METRIC_HIST_BUCKETS - 1);
        double e = relative_error(metric_hist_value(b), (double)us);
        if (e >= worst) { /* the largest such value: the message then shows a real latency */
            worst = e;
            worst_us = us;
        }
    }
    if (worst > 0.045)
        fail_msg("%lld us reads back as %.1f us: %.2f %% off (more than 4.5 %%)",
                 (long long)worst_us, metric_hist_value(metric_hist_bucket(worst_us)), worst * 100);
}

static void test_hist_buckets_ordered(void **state)
{
    (void)state;
    /* monotonic: a larger value never lands in a smaller bucket, and values grow with buckets */
    int last = 0;
    for (int64_t us = 1; us <= 300 * (int64_t)US_PER_S; us += us / 64 + 1) {
        int b = metric_hist_bucket(us);
        assert_true(b >= last);
        last = b;
    }
    for (int b = 1; b < METRIC_HIST_BUCKETS; b++)
        assert_true(metric_hist_value(b) > metric_hist_value(b - 1));
    /* the ends: below 1 us, and beyond 2^28 us */
    assert_int_equal(metric_hist_bucket(0), 0);
    assert_int_equal(metric_hist_bucket(-5), 0);
    assert_int_equal(metric_hist_bucket(INT64_MAX), METRIC_HIST_BUCKETS - 1);
    assert_int_equal(metric_hist_bucket((int64_t)1 << 28), METRIC_HIST_BUCKETS - 1);
    assert_true(metric_hist_bucket(((int64_t)1 << 28) - 1) == METRIC_HIST_BUCKETS - 1);
}

static void test_hist_quantiles_uniform(void **state)
{
    (void)state;
    struct metric_hist h;
    memset(&h, 0, sizeof h);
    for (int ms = 1; ms <= 1000; ms++)
        metric_hist_add(&h, (int64_t)ms * US_PER_MS, 1);
    assert_int_equal(h.total, 1000);
    static const struct {
        double q, want_ms;
    } cases[] = {{0.5, 500}, {0.99, 990}, {0.9, 900}, {0.1, 100}, {0.01, 10}, {1.0, 1000}};
    for (size_t i = 0; i < N(cases); i++) {
        double got_ms = metric_hist_quantile(&h, cases[i].q) / US_PER_MS;
        if (relative_error(got_ms, cases[i].want_ms) > 0.05)
            fail_msg("p%g of uniform 1..1000 ms: %.1f ms, expected %.0f ms within 5 %%",
                     cases[i].q * 100, got_ms, cases[i].want_ms);
    }
    /* the same samples added with counts */
    struct metric_hist counted;
    memset(&counted, 0, sizeof counted);
    for (int ms = 1; ms <= 1000; ms += 2)
        metric_hist_add(&counted, (int64_t)ms * US_PER_MS, 2);
    double p50 = metric_hist_quantile(&counted, 0.5) / US_PER_MS;
    assert_true(relative_error(p50, 500) < 0.05);
}

static void test_hist_quantiles_bimodal(void **state)
{
    (void)state;
    /* 90 % fast (10 ms), 10 % slow (1 s): p50 and p90 fast, p91 and p99 slow */
    struct metric_hist h;
    memset(&h, 0, sizeof h);
    metric_hist_add(&h, 10 * US_PER_MS, 900);
    metric_hist_add(&h, US_PER_S, 100);
    assert_true(relative_error(metric_hist_quantile(&h, 0.5), 10 * US_PER_MS) < 0.05);
    assert_true(relative_error(metric_hist_quantile(&h, 0.9), 10 * US_PER_MS) < 0.05);
    assert_true(relative_error(metric_hist_quantile(&h, 0.91), US_PER_S) < 0.05);
    assert_true(relative_error(metric_hist_quantile(&h, 0.99), US_PER_S) < 0.05);

    /* a single sample is every quantile */
    struct metric_hist one;
    memset(&one, 0, sizeof one);
    metric_hist_add(&one, 250 * US_PER_MS, 1);
    for (double q = 0.001; q <= 1.0; q += 0.111)
        assert_true(relative_error(metric_hist_quantile(&one, q), 250 * US_PER_MS) < 0.05);

    /* empty, and q out of (0, 1] */
    struct metric_hist empty;
    memset(&empty, 0, sizeof empty);
    assert_true(metric_hist_quantile(&empty, 0.5) < 0);
    assert_true(metric_hist_quantile(&h, 0) < 0);
    assert_true(metric_hist_quantile(&h, 1.01) < 0);
}

static void test_hist_merge(void **state)
{
    (void)state;
    /* two writers' halves of a distribution merge into the whole */
    struct metric_hist a, b, whole;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&whole, 0, sizeof whole);
    for (int ms = 1; ms <= 1000; ms++) {
        metric_hist_add(ms % 2 ? &a : &b, (int64_t)ms * US_PER_MS, 1);
        metric_hist_add(&whole, (int64_t)ms * US_PER_MS, 1);
    }
    metric_hist_merge(&a, &b);
    assert_memory_equal(&a, &whole, sizeof a);
    assert_int_equal(a.total, 1000);
    /* b is left as it was */
    assert_int_equal(b.total, 500);
}

static void test_hist_text_round_trip(void **state)
{
    (void)state;
    struct metric_hist h, back;
    memset(&h, 0, sizeof h);
    memset(&back, 0, sizeof back);
    metric_hist_add(&h, 0, 3);
    metric_hist_add(&h, 1500, 7);
    metric_hist_add(&h, 80 * US_PER_MS, 1);
    metric_hist_add(&h, INT64_MAX, 2);
    metric_hist_add(&h, 2 * US_PER_MS, (uint64_t)1 << 40);
    char text[METRIC_HIST_BUCKETS * 24];
    int n = metric_hist_format(&h, text, sizeof text);
    assert_int_equal((size_t)n, strlen(text));
    char want[128];
    snprintf(want, sizeof want, "0:3 %d:7 %d:%llu %d:1 %d:2", metric_hist_bucket(1500),
             metric_hist_bucket(2 * US_PER_MS), 1ULL << 40, metric_hist_bucket(80 * US_PER_MS),
             METRIC_HIST_BUCKETS - 1);
    assert_string_equal(text, want);
    assert_int_equal(metric_hist_parse_add(&back, text), 0);
    assert_memory_equal(&back, &h, sizeof h);

    /* parsing adds: twice is double */
    assert_int_equal(metric_hist_parse_add(&back, text), 0);
    assert_int_equal(back.total, 2 * h.total);

    /* every bucket at once fits the buffer metric_batch_hist uses */
    struct metric_hist full;
    memset(&full, 0, sizeof full);
    for (int b = 0; b < METRIC_HIST_BUCKETS; b++)
        full.count[b] = UINT64_MAX / METRIC_HIST_BUCKETS;
    assert_true(metric_hist_format(&full, text, sizeof text) > 0);

    /* an empty histogram is empty text, and the empty text an empty histogram */
    struct metric_hist empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(metric_hist_format(&empty, text, sizeof text), 0);
    assert_string_equal(text, "");
    assert_int_equal(metric_hist_parse_add(&empty, ""), 0);
    assert_int_equal(empty.total, 0);

    /* too small a buffer: -1, never a cut text */
    assert_int_equal(metric_hist_format(&h, text, strlen(want)), -1);
    assert_int_equal(metric_hist_format(&h, text, strlen(want) + 1), (int)strlen(want));
}

static void test_hist_parse_refuses_malformed(void **state)
{
    (void)state;
    char out_of_range[32];
    snprintf(out_of_range, sizeof out_of_range, "%d:1", METRIC_HIST_BUCKETS);
    const char *const bad[] = {"x",    "1",    "1:",      ":5",        "1:x",
                               "-1:5", "1:-5", "1:5,2:3", "1:5;2:3",   "1:5 2:x",
                               "1:5x", "a:1",  "1::5",    out_of_range};
    for (size_t i = 0; i < N(bad); i++) {
        struct metric_hist h;
        memset(&h, 0, sizeof h);
        metric_hist_add(&h, 1000, 4);
        struct metric_hist before = h;
        if (metric_hist_parse_add(&h, bad[i]) == 0)
            fail_msg("'%s' accepted (total now %llu)", bad[i], (unsigned long long)h.total);
        /* refused: h unchanged, even when a valid pair came first */
        assert_memory_equal(&h, &before, sizeof h);
    }
}

/* A count with a sign after a blank ("1: -5") is as malformed as "1:-5", but strtoull skips the
 * blank and negates: it would be added as 2^64 - 5. */
static void test_hist_parse_refuses_signed_counts(void **state)
{
    (void)state;
    static const char *const bad[] = {"1: -5", "1:\t-5", "3:1 1: -1"};
    for (size_t i = 0; i < N(bad); i++) {
        struct metric_hist h;
        memset(&h, 0, sizeof h);
        if (metric_hist_parse_add(&h, bad[i]) == 0)
            fail_msg("'%s' accepted (total now %llu)", bad[i], (unsigned long long)h.total);
    }
}

/* ---- Statistics ------------------------------------------------------------------------- */

static void test_stat_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum metric_stat_kind kind;
        double q;
    } good[] = {
        {"Sum", METRIC_SUM, 0},
        {"Average", METRIC_AVERAGE, 0},
        {"Minimum", METRIC_MINIMUM, 0},
        {"Maximum", METRIC_MAXIMUM, 0},
        {"SampleCount", METRIC_SAMPLE_COUNT, 0},
        {"p50", METRIC_PERCENTILE, 0.5},
        {"p99", METRIC_PERCENTILE, 0.99},
        {"p99.9", METRIC_PERCENTILE, 0.999},
        {"p100", METRIC_PERCENTILE, 1.0},
        {"p0.1", METRIC_PERCENTILE, 0.001},
        {"p1", METRIC_PERCENTILE, 0.01},
    };
    for (size_t i = 0; i < N(good); i++) {
        struct metric_stat s = {METRIC_SUM, -1};
        if (metric_stat_parse(good[i].text, &s) != 0)
            fail_msg("'%s' refused", good[i].text);
        assert_int_equal(s.kind, good[i].kind);
        if (good[i].kind == METRIC_PERCENTILE)
            assert_true(fabs(s.q - good[i].q) < 1e-12);
    }
    static const char *const bad[] = {"",         "sum",  "average", "SUM",  "Avg",  "Mean",
                                      "Average ", " Sum", "p",       "p0",   "p0.0", "p-1",
                                      "p100.1",   "p101", "p1000",   "pabc", "p50x", "P50",
                                      "p50%",     "pnan", "pinf",    "tm99", "Sum2"};
    for (size_t i = 0; i < N(bad); i++) {
        struct metric_stat s;
        if (metric_stat_parse(bad[i], &s) == 0)
            fail_msg("'%s' accepted (kind %d, q %g)", bad[i], (int)s.kind, s.q);
    }
}

/* A window as metric_read_window leaves it: sums of the datapoints' sums and counts. */
static struct metric_window window_of(double sum, double count, double min, double max,
                                      int datapoints)
{
    struct metric_window w;
    memset(&w, 0, sizeof w);
    w.sum = sum;
    w.count = count;
    w.min = min;
    w.max = max;
    w.datapoints = datapoints;
    return w;
}

static double value_of(const struct metric_window *w, const char *stat)
{
    struct metric_stat s;
    assert_int_equal(metric_stat_parse(stat, &s), 0);
    double v = NAN;
    if (!metric_window_value(w, s, &v))
        fail_msg("%s: missing data", stat);
    return v;
}

static void test_window_value(void **state)
{
    (void)state;
    /* 3 datapoints: 10 (1 sample), 2+4 (2 samples), 1+2+3+8 (4 samples) */
    struct metric_window w = window_of(30, 7, 1, 10, 3);
    assert_true(value_of(&w, "Sum") == 30);
    /* the mean of the samples, not of the datapoints' means */
    assert_true(fabs(value_of(&w, "Average") - 30.0 / 7) < 1e-12);
    assert_true(value_of(&w, "Minimum") == 1);
    assert_true(value_of(&w, "Maximum") == 10);
    assert_true(value_of(&w, "SampleCount") == 7);

    /* negative values and a zero sum are data, not missing data */
    struct metric_window neg = window_of(0, 2, -5, 5, 1);
    assert_true(value_of(&neg, "Sum") == 0);
    assert_true(value_of(&neg, "Average") == 0);
    assert_true(value_of(&neg, "Minimum") == -5);
}

static void test_window_missing_data(void **state)
{
    (void)state;
    static const char *const stats[] = {"Sum",         "Average", "Minimum", "Maximum",
                                        "SampleCount", "p50",     "p99",     "p100"};
    /* no datapoint: every statistic is missing, never 0 */
    struct metric_window empty = window_of(0, 0, 0, 0, 0);
    for (size_t i = 0; i < N(stats); i++) {
        struct metric_stat s;
        assert_int_equal(metric_stat_parse(stats[i], &s), 0);
        double v = 12345;
        if (metric_window_value(&empty, s, &v))
            fail_msg("%s of an empty window: %g, expected missing data", stats[i], v);
        assert_true(v == 12345);
    }
    /* values without histograms: percentiles are missing, the rest are not */
    struct metric_window values = window_of(6, 3, 1, 3, 3);
    struct metric_stat p99;
    assert_int_equal(metric_stat_parse("p99", &p99), 0);
    double v;
    assert_false(metric_window_value(&values, p99, &v));
    assert_true(value_of(&values, "Average") == 2);
    /* a histogram flagged but empty is missing too */
    values.has_hist = true;
    assert_false(metric_window_value(&values, p99, &v));
}

static void test_window_percentiles(void **state)
{
    (void)state;
    /* histograms only (gantry-lb's latencies): percentiles read, the value statistics missing */
    struct metric_window w = window_of(0, 0, 0, 0, 0);
    w.has_hist = true;
    for (int ms = 1; ms <= 1000; ms++)
        metric_hist_add(&w.hist, (int64_t)ms * US_PER_MS, 1);
    /* histograms count microseconds, percentiles come back in seconds */
    assert_true(relative_error(value_of(&w, "p50"), 0.500) < 0.05);
    assert_true(relative_error(value_of(&w, "p99"), 0.990) < 0.05);
    assert_true(value_of(&w, "p100") >= value_of(&w, "p99"));
    struct metric_stat avg = {METRIC_AVERAGE, 0};
    double v;
    assert_false(metric_window_value(&w, avg, &v));
}

/* ---- The write command ------------------------------------------------------------------- */

static void test_batch_arguments(void **state)
{
    (void)state;
    const struct metric_retention retention = {3600, 86400};
    struct metric_batch b;
    metric_batch_init(&b, &retention);
    int argc;
    const char **argv;
    const size_t *lens;
    /* nothing to send yet; what Redis could not merge is dropped */
    assert_false(metric_batch_command(&b, &argc, &argv, &lens));
    metric_batch_value(&b, "Custom|m|", 100, NAN, 1, 0, 0);
    metric_batch_value(&b, "Custom|m|", 100, 1, 0, 1, 1);
    metric_batch_value(&b, "Custom|m|", 100, INFINITY, 1, 1, 1);
    assert_false(metric_batch_command(&b, &argc, &argv, &lens));

    metric_batch_sample(&b, "Custom|m|", 1700000000, 51.2);
    struct metric_hist h;
    memset(&h, 0, sizeof h);
    metric_batch_hist(&b, "Custom|h|", 1700000001, &h); /* empty: dropped */
    metric_hist_add(&h, 1000, 2);
    metric_batch_hist(&b, "Custom|h|", 1700000001, &h);
    assert_int_equal(b.datapoints, 2);
    assert_true(metric_batch_command(&b, &argc, &argv, &lens));
    assert_int_equal(argc, 5 + 7 + 4);
    assert_string_equal(argv[0], "EVAL");
    assert_string_equal(argv[2], "0");
    /* a minute's key outlives its last second by a minute, a rollup's its last minute by an
     * hour */
    assert_string_equal(argv[3], "3660");
    assert_string_equal(argv[4], "90000");
    static const char *const want[] = {
        "v",         "Custom|m|",          "1700000000",         "51.200000000000003",
        "1",         "51.200000000000003", "51.200000000000003", "h",
        "Custom|h|", "1700000001"};
    for (size_t i = 0; i < N(want); i++) {
        assert_string_equal(argv[5 + i], want[i]);
        assert_int_equal(lens[5 + i], strlen(want[i]));
    }
    char text[32];
    snprintf(text, sizeof text, "%d:2", metric_hist_bucket(1000));
    assert_string_equal(argv[15], text);

    /* reset: the same header for the next second, no datapoint */
    metric_batch_reset(&b, &retention);
    assert_false(metric_batch_command(&b, &argc, &argv, &lens));
    assert_int_equal(b.argc, 5);
    metric_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_id_canonical),
        cmocka_unit_test(test_series_id_refuses_reserved_characters),
        cmocka_unit_test(test_series_id_refuses_empty_parts),
        cmocka_unit_test(test_series_id_lengths),
        cmocka_unit_test(test_series_id_dimension_count),
        cmocka_unit_test(test_series_id_refuses_duplicates),
        cmocka_unit_test(test_dim_parse),
        cmocka_unit_test(test_hist_round_trip),
        cmocka_unit_test(test_hist_buckets_ordered),
        cmocka_unit_test(test_hist_quantiles_uniform),
        cmocka_unit_test(test_hist_quantiles_bimodal),
        cmocka_unit_test(test_hist_merge),
        cmocka_unit_test(test_hist_text_round_trip),
        cmocka_unit_test(test_hist_parse_refuses_malformed),
        cmocka_unit_test(test_hist_parse_refuses_signed_counts),
        cmocka_unit_test(test_stat_parse),
        cmocka_unit_test(test_window_value),
        cmocka_unit_test(test_window_missing_data),
        cmocka_unit_test(test_window_percentiles),
        cmocka_unit_test(test_batch_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
