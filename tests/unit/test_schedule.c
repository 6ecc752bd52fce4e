/* Schedule expressions: every example on AWS's EventBridge cron page and in Application Auto
 * Scaling's scheduled-scaling pages with its next fire times, the L / W / # forms, rates, at(),
 * timezones across daylight-saving changes (New York both ways, Lord Howe's half hour, Kolkata's
 * +05:30), refusals with their exact messages, and a brute-force check of the cron search.
 *
 * The expected times in the tables were computed by an independent Python oracle (its own AWS cron
 * parser, stepping real instants minute by minute with zoneinfo and firing on the first time the
 * wall clock shows a matching minute) and checked by hand against a calendar for the AWS examples.
 * All times are UTC; the comments give the local ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/schedule.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NY "America/New_York"

/* ---- Helpers ----------------------------------------------------------------------------- */

/* "2025-01-15T09:30:00Z" as Unix seconds; "never" as -1. */
static int64_t utc(const char *iso)
{
    if (strcmp(iso, "never") == 0)
        return -1;
    struct tm tm = {0};
    if (sscanf(iso, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        fail_msg("the test's time does not parse: %s", iso);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static const char *iso(int64_t t, char *buf, size_t size)
{
    if (t == -1) {
        snprintf(buf, size, "never");
        return buf;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static void parse_ok(const char *text, struct schedule *s)
{
    char why[256];
    if (schedule_parse(text, s, why, sizeof why) != 0)
        fail_msg("%s refused: %s", text, why);
    assert_string_equal(why, "");
}

/* ---- When next: the documentation's examples and more -------------------------------------- */

struct next_case {
    const char *expr, *zone, *after;
    const char *fires[4]; /* the successive fires, each asked with after = the one before */
};

static const struct next_case next_cases[] = {
    /* EventBridge's cron examples (and Application Auto Scaling's, the same table); 2025-01-15
     * is a Wednesday */
    {"cron(0 10 * * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-15T10:00:00Z", "2025-01-16T10:00:00Z", "2025-01-17T10:00:00Z"}},
    {"cron(15 12 * * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-15T12:15:00Z", "2025-01-16T12:15:00Z", "2025-01-17T12:15:00Z"}},
    {"cron(0 18 ? * MON-FRI *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-15T18:00:00Z", "2025-01-16T18:00:00Z", "2025-01-17T18:00:00Z",
      "2025-01-20T18:00:00Z"}},
    {"cron(0 8 1 * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-02-01T08:00:00Z", "2025-03-01T08:00:00Z", "2025-04-01T08:00:00Z"}},
    {"cron(0/15 * * * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-15T09:45:00Z", "2025-01-15T10:00:00Z", "2025-01-15T10:15:00Z"}},
    /* from Friday night over the weekend */
    {"cron(0/10 * ? * MON-FRI *)",
     NULL,
     "2025-01-17T23:45:00Z",
     {"2025-01-17T23:50:00Z", "2025-01-20T00:00:00Z", "2025-01-20T00:10:00Z"}},
    {"cron(0/5 8-17 ? * MON-FRI *)",
     NULL,
     "2025-01-17T17:52:00Z",
     {"2025-01-17T17:55:00Z", "2025-01-20T08:00:00Z", "2025-01-20T08:05:00Z"}},
    /* hours 20-2 wrap past midnight; each minute's own weekday decides (no Saturday 00:00) */
    {"cron(0/30 20-2 ? * MON-FRI *)",
     NULL,
     "2025-01-17T23:10:00Z",
     {"2025-01-17T23:30:00Z", "2025-01-20T00:00:00Z", "2025-01-20T00:30:00Z",
      "2025-01-20T01:00:00Z"}},
    /* the put-rule examples */
    {"cron(0 12 * * ? *)",
     NULL,
     "2025-01-15T12:00:00Z",
     {"2025-01-16T12:00:00Z", "2025-01-17T12:00:00Z"}},
    {"cron(5,35 14 * * ? *)",
     NULL,
     "2025-01-15T14:05:00Z",
     {"2025-01-15T14:35:00Z", "2025-01-16T14:05:00Z", "2025-01-16T14:35:00Z"}},
    /* last Friday of the month, 2019-2022: November's 25th, December's 30th, then never */
    {"cron(15 10 ? * 6L 2019-2022)",
     NULL,
     "2022-11-01T00:00:00Z",
     {"2022-11-25T10:15:00Z", "2022-12-30T10:15:00Z", "never"}},
    /* Application Auto Scaling's examples */
    {"cron(30 6 ? * MON *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-20T06:30:00Z", "2025-01-27T06:30:00Z"}},
    {"cron(0 9 * * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-16T09:00:00Z", "2025-01-17T09:00:00Z"}},
    /* 18:00 at UTC-9 is 03:00Z the next day */
    {"cron(0 18 ? * MON-FRI *)",
     "Etc/GMT+9",
     "2025-01-15T09:30:00Z",
     {"2025-01-16T03:00:00Z", "2025-01-17T03:00:00Z", "2025-01-18T03:00:00Z"}},
    {"cron(0 0/4 * * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-15T12:00:00Z", "2025-01-15T16:00:00Z", "2025-01-15T20:00:00Z"}},
    /* first Monday: February and March 2025 begin on a Saturday, April on a Tuesday */
    {"cron(0 9 ? * 2#1 *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-02-03T09:00:00Z", "2025-03-03T09:00:00Z", "2025-04-07T09:00:00Z"}},
    {"cron(0 0 L * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-31T00:00:00Z",
      "2025-04-30T00:00:00Z"}},
    {"cron(0 0 ? * 6L *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-28T00:00:00Z",
      "2025-04-25T00:00:00Z"}},
    /* last weekday: 2025-03-31 is a Monday, 2025-04-30 a Wednesday */
    {"cron(0 0 LW * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-31T00:00:00Z",
      "2025-04-30T00:00:00Z"}},
    /* weekday nearest the 15th: Feb 15 and Mar 15 2025 are Saturdays, so the Fridays before */
    {"cron(0 0 15W * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-02-14T00:00:00Z", "2025-03-14T00:00:00Z", "2025-04-15T00:00:00Z",
      "2025-05-15T00:00:00Z"}},
    /* 1W never leaves the month: Saturday the 1st gives Monday the 3rd */
    {"cron(0 0 1W * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-02-03T00:00:00Z", "2025-03-03T00:00:00Z", "2025-04-01T00:00:00Z",
      "2025-05-01T00:00:00Z"}},
    /* 31W: none in 30-day months; Saturday May 31 gives Friday the 30th */
    {"cron(0 0 31W * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-31T00:00:00Z", "2025-03-31T00:00:00Z", "2025-05-30T00:00:00Z"}},
    {"cron(0 0 L-3 * ? *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-28T00:00:00Z", "2025-02-25T00:00:00Z", "2025-03-28T00:00:00Z"}},
    /* L alone in day-of-week is the week's last day, Saturday */
    {"cron(0 0 ? * L *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-01-18T00:00:00Z", "2025-01-25T00:00:00Z"}},
    /* the fifth Sunday */
    {"cron(0 12 ? * 1#5 *)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2025-03-30T12:00:00Z", "2025-06-29T12:00:00Z", "2025-08-31T12:00:00Z"}},
    /* names in either case, wrapping month and day ranges, a year step */
    {"cron(0 0 ? nov-feb fri-mon 2025)",
     NULL,
     "2025-02-27T00:00:00Z",
     {"2025-02-28T00:00:00Z", "2025-11-01T00:00:00Z", "2025-11-02T00:00:00Z"}},
    {"cron(0 0 1 1 ? 2026/10)",
     NULL,
     "2025-01-15T09:30:00Z",
     {"2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z"}},
    {"cron(0 0 31 DEC ? 2199)", NULL, "2199-06-01T00:00:00Z", {"2199-12-31T00:00:00Z", "never"}},
    /* rare but possible: far beyond "a few years" */
    {"cron(0 0 29 2 ? *)", NULL, "2096-03-01T00:00:00Z", {"2104-02-29T00:00:00Z"}},
    {"cron(0 0 ? 2 1#5 *)", NULL, "2088-03-01T00:00:00Z", {"2128-02-29T00:00:00Z"}},
    /* from the start of time, in UTC and New York */
    {"cron(0 0 1 1 ? *)", NULL, "1901-01-01T00:00:00Z", {"1970-01-01T00:00:00Z"}},
    {"cron(0 0 1 1 ? *)", NY, "1901-01-01T00:00:00Z", {"1970-01-01T05:00:00Z"}},

    /* New York springs forward on 2025-03-09 at 02:00 EST to 03:00 EDT. 02:30 does not exist
     * that day, so it is skipped: the next 02:30 is March 10th's (EDT) */
    {"cron(30 2 * * ? *)",
     NY,
     "2025-03-08T12:00:00Z",
     {"2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"}},
    /* hourly from 01:30 EST: 03:00 EDT is the very next hour */
    {"cron(0 * * * ? *)",
     NY,
     "2025-03-09T06:30:00Z",
     {"2025-03-09T07:00:00Z", "2025-03-09T08:00:00Z"}},
    /* 01:45 EST, then 03:00 EDT */
    {"cron(0/15 * * * ? *)",
     NY,
     "2025-03-09T06:40:00Z",
     {"2025-03-09T06:45:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:15:00Z"}},
    /* 09:00 local: 14:00Z in EST, 13:00Z in EDT */
    {"cron(0 9 * * ? *)",
     NY,
     "2025-03-08T00:00:00Z",
     {"2025-03-08T14:00:00Z", "2025-03-09T13:00:00Z", "2025-03-10T13:00:00Z"}},
    /* New York falls back on 2025-11-02 at 02:00 EDT to 01:00 EST: 01:30 happens twice and fires
     * once, at 01:30 EDT */
    {"cron(30 1 * * ? *)",
     NY,
     "2025-11-01T12:00:00Z",
     {"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"}},
    /* 01:30 EDT, then the repeated 01:00 and 01:30 (EST) are skipped: 02:00 EST */
    {"cron(0/30 * * * ? *)",
     NY,
     "2025-11-02T05:10:00Z",
     {"2025-11-02T05:30:00Z", "2025-11-02T07:00:00Z", "2025-11-02T07:30:00Z"}},
    /* asked from inside the repeat (01:10 EST): 01:30 already fired in EDT */
    {"cron(0/30 * * * ? *)",
     NY,
     "2025-11-02T06:10:00Z",
     {"2025-11-02T07:00:00Z", "2025-11-02T07:30:00Z"}},
    {"cron(0 9 * * ? *)",
     NY,
     "2025-10-31T00:00:00Z",
     {"2025-10-31T13:00:00Z", "2025-11-01T13:00:00Z", "2025-11-02T14:00:00Z",
      "2025-11-03T14:00:00Z"}},
    /* Kolkata is +05:30 all year */
    {"cron(0 9 * * ? *)",
     "Asia/Kolkata",
     "2025-01-15T09:30:00Z",
     {"2025-01-16T03:30:00Z", "2025-01-17T03:30:00Z"}},
    {"cron(0 * * * ? *)",
     "Asia/Kolkata",
     "2025-01-15T09:30:00Z",
     {"2025-01-15T10:30:00Z", "2025-01-15T11:30:00Z"}},
    /* midnight on the 1st in Kolkata is still the previous month in UTC */
    {"cron(0 0 1 * ? *)",
     "Asia/Kolkata",
     "2025-01-15T09:30:00Z",
     {"2025-01-31T18:30:00Z", "2025-02-28T18:30:00Z"}},
    /* Lord Howe falls back half an hour (02:00 +11 to 01:30 +10:30) on 2025-04-06: the repeated
     * 01:30 is skipped */
    {"cron(0/30 * * * ? *)",
     "Australia/Lord_Howe",
     "2025-04-05T14:10:00Z",
     {"2025-04-05T14:30:00Z", "2025-04-05T15:30:00Z", "2025-04-05T16:00:00Z",
      "2025-04-05T16:30:00Z"}},

    /* at(): Application Auto Scaling's examples, in the past and the future */
    {"at(2021-03-31T22:00:00)", NULL, "2021-01-01T00:00:00Z", {"2021-03-31T22:00:00Z", "never"}},
    {"at(2021-03-31T22:00:00)", NULL, "2025-01-01T00:00:00Z", {"never"}},
    {"at(2021-03-31T22:00:00)", NULL, "2021-03-31T21:59:59Z", {"2021-03-31T22:00:00Z"}},
    {"at(2021-01-31T17:00:00)", NY, "2021-01-01T00:00:00Z", {"2021-01-31T22:00:00Z"}},
    /* inside the spring gap: fires when the gap ends, 03:00 EDT */
    {"at(2025-03-09T02:30:00)", NY, "2025-01-01T00:00:00Z", {"2025-03-09T07:00:00Z"}},
    /* inside the fall repeat: the first 01:30 (EDT), and never again once that passed */
    {"at(2025-11-02T01:30:00)", NY, "2025-01-01T00:00:00Z", {"2025-11-02T05:30:00Z", "never"}},
    {"at(2025-11-02T01:30:00)", NY, "2025-11-02T06:00:00Z", {"never"}},
    {"at(2025-01-15T15:00:00)", "Asia/Kolkata", "2025-01-01T00:00:00Z", {"2025-01-15T09:30:00Z"}},
    {"at(2199-12-31T23:59:59)", NULL, "2199-12-31T23:59:58Z", {"2199-12-31T23:59:59Z"}},
};

static void test_next(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(next_cases); i++) {
        const struct next_case *c = &next_cases[i];
        struct schedule s;
        parse_ok(c->expr, &s);
        int64_t after = utc(c->after);
        for (size_t k = 0; k < N(c->fires) && c->fires[k]; k++) {
            char why[256], want[32], got[32];
            int64_t expect = utc(c->fires[k]);
            int64_t next = schedule_next(&s, 0, after, c->zone, why, sizeof why);
            if (next != expect)
                fail_msg("%s in %s after %s: fire %zu is %s, expected %s (%s)", c->expr,
                         c->zone ? c->zone : "UTC", iso(after, got, sizeof got), k + 1,
                         iso(next, got, sizeof got), iso(expect, want, sizeof want), why);
            if (next == -1)
                break;
            after = next;
        }
    }
}

/* Patterns that are valid but can never fire, and years that are over, answer -1 (quickly: the
 * search goes month by month, see the fuzz target and docs/schedules.md for the cost). */
static void test_never(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *after;
        bool in_any_zone; /* the last ones are over in UTC, still ahead in New York */
    } cases[] = {
        {"cron(0 0 30 2 ? *)", "2025-01-01T00:00:00Z", true},
        {"cron(0 0 31 4,6,9,11 ? *)", "2025-01-01T00:00:00Z", true},
        {"cron(0 0 ? 2 1#5 2025-2031)", "2025-01-01T00:00:00Z", true},
        {"cron(15 10 ? * 6L 2019-2022)", "2025-01-01T00:00:00Z", true},
        {"cron(0 0 * * ? *)", "2200-01-01T05:00:00Z", true},
        {"cron(59 23 31 12 ? 2199)", "2199-12-31T23:59:00Z", false},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct schedule s;
        char why[256];
        parse_ok(cases[i].expr, &s);
        int64_t next = schedule_next(&s, 0, utc(cases[i].after), NULL, why, sizeof why);
        if (next != -1)
            fail_msg("%s after %s fires at %lld, expected never", cases[i].expr, cases[i].after,
                     (long long)next);
        next = schedule_next(&s, 0, utc(cases[i].after), NY, why, sizeof why);
        if (cases[i].in_any_zone && next != -1)
            fail_msg("%s after %s in New York fires at %lld", cases[i].expr, cases[i].after,
                     (long long)next);
    }
}

/* The extremes of int64_t never overflow or hang. */
static void test_extreme_instants(void **state)
{
    (void)state;
    static const char *const exprs[] = {"cron(* * * * ? *)", "cron(0 0 L * ? *)",
                                        "at(2025-01-01T00:00:00)", "rate(1 minute)"};
    for (size_t i = 0; i < N(exprs); i++) {
        struct schedule s;
        char why[256];
        parse_ok(exprs[i], &s);
        assert_int_equal(schedule_next(&s, 0, INT64_MAX, NULL, why, sizeof why), -1);
        assert_int_equal(schedule_next(&s, INT64_MIN, INT64_MAX, NY, why, sizeof why), -1);
        int64_t first = schedule_next(&s, 0, INT64_MIN, NY, why, sizeof why);
        assert_true(first > INT64_MIN);
    }
}

/* ---- rate() -------------------------------------------------------------------------------- */

static void test_rate(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        int64_t seconds, origin, after, expect;
    } cases[] = {
        {"rate(5 minutes)", 300, 1000, 999, 1000}, /* fires at origin itself */
        {"rate(5 minutes)", 300, 1000, 1000, 1300},
        {"rate(5 minutes)", 300, 1000, 1299, 1300},
        {"rate(5 minutes)", 300, 1000, 1300, 1600},
        {"rate(5 minutes)", 300, 1000, -5000, 1000},
        {"rate(1 minute)", 60, 0, 59, 60},
        {"rate(1 hour)", 3600, 7, 3607, 7207},
        {"rate(2 hours)", 7200, 0, 1, 7200},
        {"rate(1 day)", 86400, 0, 86400 * 3, 86400 * 4},
        {"rate(30 days)", 30 * 86400, 0, 1, 30 * 86400},
        {"rate(999999999 days)", 999999999LL * 86400, 0, 1, 999999999LL * 86400},
        {"rate(5 minutes)", 300, INT64_MAX - 10, INT64_MAX - 5, -1}, /* past int64_t */
        {"rate(5 minutes)", 300, INT64_MIN, INT64_MAX, -1},
        {"rate(5 minutes)", 300, 0, INT64_MAX, -1},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct schedule s;
        char why[256];
        parse_ok(cases[i].expr, &s);
        assert_int_equal(s.kind, SCHEDULE_RATE);
        assert_int_equal(s.rate_seconds, cases[i].seconds);
        int64_t next = schedule_next(&s, cases[i].origin, cases[i].after, NULL, why, sizeof why);
        if (next != cases[i].expect)
            fail_msg("%s from %lld after %lld: %lld, expected %lld", cases[i].expr,
                     (long long)cases[i].origin, (long long)cases[i].after, (long long)next,
                     (long long)cases[i].expect);
    }
}

/* ---- What the parser builds ------------------------------------------------------------------ */

static uint64_t bits(const int *values, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= 1ULL << values[i];
    return b;
}

static void test_parsed_fields(void **state)
{
    (void)state;
    struct schedule s;
    parse_ok("cron(0/30 20-2 ? * MON-FRI *)", &s);
    assert_int_equal(s.kind, SCHEDULE_CRON);
    assert_int_equal(s.minutes, bits((int[]){0, 30}, 2));
    assert_int_equal(s.hours, bits((int[]){20, 21, 22, 23, 0, 1, 2}, 7));
    assert_int_equal(s.mdays, 0);
    assert_int_equal(s.months, 0x1ffe);
    assert_int_equal(s.wdays, 0x3e); /* MON-FRI: bits 1-5 */
    assert_true(s.mday_any);
    assert_false(s.wday_any);
    assert_int_equal(s.years[0], ~0ULL);
    assert_int_equal(s.years[3], (1ULL << (230 - 192)) - 1); /* through 2199, not beyond */

    parse_ok("cron(1-59/20 */6 1,15,31 JAN,jul ? 1970,2199)", &s);
    assert_int_equal(s.minutes, bits((int[]){1, 21, 41}, 3));
    assert_int_equal(s.hours, bits((int[]){0, 6, 12, 18}, 4));
    assert_int_equal(s.mdays, (uint32_t)bits((int[]){1, 15, 31}, 3));
    assert_int_equal(s.months, bits((int[]){1, 7}, 2));
    assert_true(s.wday_any);
    assert_int_equal(s.years[0], 1);
    assert_int_equal(s.years[3], 1ULL << (229 - 192));

    parse_ok("cron(0 0 ? * sat#2 *)", &s);
    assert_int_equal(s.wday_nth, 2);
    assert_int_equal(s.wday_nth_day, 7);
    parse_ok("cron(0 0 ? * FRIL *)", &s);
    assert_int_equal(s.wday_last, 6);
    parse_ok("cron(0 0 ? * L *)", &s);
    assert_int_equal(s.wdays, 1 << 6);
    parse_ok("cron(0 0 l * ? *)", &s);
    assert_true(s.mday_last);
    parse_ok("cron(0 0 L-3 * ? *)", &s);
    assert_int_equal(s.mday_last_offset, 3);
    parse_ok("cron(0 0 LW * ? *)", &s);
    assert_int_equal(s.mday_nearest_weekday, -1);
    parse_ok("cron(0 0 15w * ? *)", &s);
    assert_int_equal(s.mday_nearest_weekday, 15);
    parse_ok("cron(0 0 28-3 * ? *)", &s); /* wraps: 28-31 and 1-3 */
    assert_int_equal(s.mdays, (uint32_t)bits((int[]){28, 29, 30, 31, 1, 2, 3}, 7));

    parse_ok("  at( 2025-03-31T22:00:05 )\t", &s);
    assert_int_equal(s.kind, SCHEDULE_AT);
    int at[] = {s.at_year, s.at_month, s.at_day, s.at_hour, s.at_minute, s.at_second};
    int want[] = {2025, 3, 31, 22, 0, 5};
    assert_memory_equal(at, want, sizeof want);
}

/* Blanks: runs of spaces and tabs between fields, around the expression and inside (). */
static void test_blanks(void **state)
{
    (void)state;
    static const char *const same[] = {"cron(0 10 * * ? *)", " cron(0  10\t* * ?   *) ",
                                       "cron( 0 10 * * ? * )", "\tcron(0 10 * * ? *)\t"};
    struct schedule first, s;
    parse_ok(same[0], &first);
    for (size_t i = 1; i < N(same); i++) {
        parse_ok(same[i], &s);
        assert_memory_equal(&s, &first, sizeof s);
    }
    parse_ok("rate(  5   minutes )", &s);
    assert_int_equal(s.rate_seconds, 300);
}

/* ---- Refused, with the exact message ------------------------------------------------------- */

#define C "cron(...): "
#define F(n, name) C "field " #n " (" name "): "
#define BOTH C "day-of-month and day-of-week cannot both be given; one must be ?"
#define FIELDS(n) C n " given; expected 6 (minutes hours day-of-month month day-of-week year)"

struct refused_case {
    const char *text, *message;
};

static const struct refused_case refused_cases[] = {
    {"", "schedule expression is empty"},
    {"  \t ", "schedule expression is empty"},
    {"hello", "unknown schedule expression \"hello\": expected at(...), rate(...) or cron(...)"},
    {"CRON(0 10 * * ? *)",
     "unknown schedule expression \"CRON(0 10 * * ? *)\": expected at(...), rate(...) or "
     "cron(...)"},
    {"\x01\x02\xff",
     "unknown schedule expression \"???\": expected at(...), rate(...) or cron(...)"},
    {"cron 0 10 * * ? *",
     "unknown schedule expression \"cron 0 10 * * ? *\": expected at(...), rate(...) or "
     "cron(...)"},
    {"cron(0 10 * * ? *", C "missing the closing )"},
    {"cron(0 10 * * ? *) daily", C "unexpected \"daily\" after )"},
    {"cron(0 10 * * ? *))", C "unexpected \")\" after )"},
    /* field count */
    {"cron()", FIELDS("0 fields")},
    {"cron(0)", FIELDS("1 field")},
    {"cron(0 10 * * ?)", FIELDS("5 fields")},
    {"cron(0 0 10 * * ? *)", FIELDS("7 fields")}, /* no seconds field */
    {"cron(0\n10 * * ? *)", FIELDS("5 fields")},
    /* the day fields */
    {"cron(0 10 * * * *)", BOTH},
    {"cron(0 10 1 * MON *)", BOTH},
    {"cron(0 10 L * 6L *)", BOTH},
    {"cron(0 10 ? * ? *)",
     C "day-of-month and day-of-week cannot both be ?; one must choose the days"},
    {"cron(? 10 * * ? *)", F(1, "minutes") "? is only allowed in day-of-month and day-of-week"},
    {"cron(0 ? * * ? *)", F(2, "hours") "? is only allowed in day-of-month and day-of-week"},
    {"cron(0 0 1 * ? ?)", F(6, "year") "? is only allowed in day-of-month and day-of-week"},
    {"cron(0 0 ?,1 * ? *)", F(3, "day-of-month") "? must be the whole field"},
    /* out of range, field by field */
    {"cron(60 10 * * ? *)", F(1, "minutes") "60 is out of range 0-59"},
    {"cron(0 24 * * ? *)", F(2, "hours") "24 is out of range 0-23"},
    {"cron(0 0-24 * * ? *)", F(2, "hours") "24 is out of range 0-23"},
    {"cron(0 0 32 * ? *)", F(3, "day-of-month") "32 is out of range 1-31"},
    {"cron(0 0 0 * ? *)", F(3, "day-of-month") "0 is out of range 1-31"},
    {"cron(0 0 1 13 ? *)", F(4, "month") "13 is out of range 1-12"},
    {"cron(0 0 1 0 ? *)", F(4, "month") "0 is out of range 1-12"},
    {"cron(0 0 ? * 8 *)", F(5, "day-of-week") "8 is out of range 1-7"},
    {"cron(0 0 ? * 0 *)", F(5, "day-of-week") "0 is out of range 1-7"}, /* Unix cron's Sunday */
    {"cron(0 0 1 * ? 1969)", F(6, "year") "1969 is out of range 1970-2199"},
    {"cron(0 0 1 * ? 2200)", F(6, "year") "2200 is out of range 1970-2199"},
    {"cron(99999999999999999999 0 1 * ? *)",
     F(1, "minutes") "99999999999999999999 is out of range 0-59"},
    /* names and numbers */
    {"cron(0 0 1 FOO ? *)", F(4, "month") "\"FOO\" is not a month (1-12 or JAN-DEC)"},
    {"cron(0 0 1 JANUARY ? *)", F(4, "month") "\"JANUARY\" is not a month (1-12 or JAN-DEC)"},
    {"cron(0 0 ? * FUNDAY *)",
     F(5, "day-of-week") "\"FUNDAY\" is not a day of the week (1-7 or SUN-SAT)"},
    {"cron(0 0 ? * MON-FUN *)",
     F(5, "day-of-week") "\"FUN\" is not a day of the week (1-7 or SUN-SAT)"},
    {"cron(0 0 JAN * ? *)", F(3, "day-of-month") "\"JAN\" is not a number"},
    {"cron(a 0 * * ? *)", F(1, "minutes") "\"a\" is not a number"},
    {"cron(-5 0 * * ? *)", F(1, "minutes") "\"-5\" is not a range (like 8-17)"},
    {"cron(0 L * * ? *)", F(2, "hours") "\"L\" is not a number"},
    {"cron(0 0 * * ? 20x5)", F(6, "year") "\"20x5\" is not a number"},
    /* ranges, lists and steps */
    {"cron(5- * * * ? *)", F(1, "minutes") "\"5-\" is not a range (like 8-17)"},
    {"cron(1-2-3 * * * ? *)", F(1, "minutes") "\"1-2-3\" is not a range (like 8-17)"},
    {"cron(1,,2 * * * ? *)", F(1, "minutes") "a value is missing in the list"},
    {"cron(1, * * * ? *)", F(1, "minutes") "a value is missing in the list"},
    {"cron(0 0 1 * ? 2030-2020)", F(6, "year") "range 2030-2020 runs backwards"},
    {"cron(0/0 * * * ? *)", F(1, "minutes") "step 0 is out of range 1-59"},
    {"cron(0/60 * * * ? *)", F(1, "minutes") "step 60 is out of range 1-59"},
    {"cron(0 */24 * * ? *)", F(2, "hours") "step 24 is out of range 1-23"},
    {"cron(0 0 1/31 * ? *)", F(3, "day-of-month") "step 31 is out of range 1-30"},
    {"cron(0 0 1 1/12 ? *)", F(4, "month") "step 12 is out of range 1-11"},
    {"cron(0/ * * * ? *)", F(1, "minutes") "\"0/\" has no step after /"},
    {"cron(/5 * * * ? *)", F(1, "minutes") "\"/5\" has no value before /"},
    {"cron(0/x * * * ? *)", F(1, "minutes") "step \"x\" is not a number"},
    {"cron(0/5/2 * * * ? *)", F(1, "minutes") "step \"5/2\" is not a number"},
    {"cron(0/-1 * * * ? *)", F(1, "minutes") "step \"-1\" is not a number"},
    /* wildcards a field does not take */
    {"cron(0 0 ? * 1/2 *)", F(5, "day-of-week") "/ is not allowed here (only , - * ? L #)"},
    {"cron(0 0 1#2 * ? *)", F(3, "day-of-month") "# is not allowed here (only , - * ? / L W)"},
    {"cron(0 0 1 1#2 ? *)", F(4, "month") "# is not allowed here (only , - * /)"},
    /* L, W and # */
    {"cron(0 0 L,15 * ? *)", F(3, "day-of-month") "L and W cannot be combined with other values"},
    {"cron(0 0 W * ? *)",
     F(3, "day-of-month") "\"W\" is not a valid use of L or W (L, L-3, LW or 15W)"},
    {"cron(0 0 1-5W * ? *)",
     F(3, "day-of-month") "\"1-5W\" is not a valid use of L or W (L, L-3, LW or 15W)"},
    {"cron(0 0 L/2 * ? *)",
     F(3, "day-of-month") "\"L/2\" is not a valid use of L or W (L, L-3, LW or 15W)"},
    {"cron(0 0 32W * ? *)", F(3, "day-of-month") "32W is out of range 1W-31W"},
    {"cron(0 0 0W * ? *)", F(3, "day-of-month") "0W is out of range 1W-31W"},
    {"cron(0 0 L-31 * ? *)", F(3, "day-of-month") "L-31 is out of range L-1 to L-30"},
    {"cron(0 0 ? * 2#6 *)", F(5, "day-of-week") "occurrence 6 in \"2#6\" is out of range 1-5"},
    {"cron(0 0 ? * 2#0 *)", F(5, "day-of-week") "occurrence 0 in \"2#0\" is out of range 1-5"},
    {"cron(0 0 ? * 8#1 *)", F(5, "day-of-week") "8 is out of range 1-7"},
    {"cron(0 0 ? * 3#1,6#3 *)", /* AWS's own example of what is not valid */
     F(5, "day-of-week") "# cannot be combined with other values (one n#k per field)"},
    {"cron(0 0 ? * 2# *)",
     F(5, "day-of-week") "\"2#\" is not a valid use of # (like 2#1, the first Monday)"},
    {"cron(0 0 ? * #1 *)",
     F(5, "day-of-week") "\"#1\" is not a valid use of # (like 2#1, the first Monday)"},
    {"cron(0 0 ? * MON-FRI#1 *)",
     F(5, "day-of-week") "\"MON-FRI#1\" is not a valid use of # (like 2#1, the first Monday)"},
    {"cron(0 0 ? * 2L,3 *)", F(5, "day-of-week") "L cannot be combined with other values"},
    {"cron(0 0 ? * L3 *)",
     F(5, "day-of-week") "\"L3\" is not a valid use of L (L, or 6L: the last Friday)"},
    {"cron(0 0 ? * 9L *)", F(5, "day-of-week") "9 is out of range 1-7"},
    /* rate() */
    {"rate(1 minutes)", "rate(...): a value of 1 takes the singular unit: rate(1 minute)"},
    {"rate(1 hours)", "rate(...): a value of 1 takes the singular unit: rate(1 hour)"},
    {"rate(1 days)", "rate(...): a value of 1 takes the singular unit: rate(1 day)"},
    {"rate(5 minute)", "rate(...): a value other than 1 takes the plural unit: rate(5 minutes)"},
    {"rate(2 day)", "rate(...): a value other than 1 takes the plural unit: rate(2 days)"},
    {"rate(0 minutes)", "rate(...): value \"0\" is not a positive whole number"},
    {"rate(-5 minutes)", "rate(...): value \"-5\" is not a positive whole number"},
    {"rate(1.5 hours)", "rate(...): value \"1.5\" is not a positive whole number"},
    {"rate(five minutes)", "rate(...): value \"five\" is not a positive whole number"},
    {"rate(1000000000 minutes)", "rate(...): value 1000000000 is too large (at most 999999999)"},
    {"rate(5 weeks)",
     "rate(...): unknown unit \"weeks\" (minute, minutes, hour, hours, day or days)"},
    {"rate(5 Minutes)",
     "rate(...): unknown unit \"Minutes\" (minute, minutes, hour, hours, day or days)"},
    {"rate(5 secondss)",
     "rate(...): unknown unit \"secondss\" (minute, minutes, hour, hours, day or days)"},
    {"rate(5)", "rate(...): expected a value and a unit, like rate(5 minutes)"},
    {"rate()", "rate(...): expected a value and a unit, like rate(5 minutes)"},
    {"rate(5 minutes please)", "rate(...): expected a value and a unit, like rate(5 minutes)"},
    {"rate(5 minutes", "rate(...): missing the closing )"},
    /* at() */
    {"at(2025-13-01T00:00:00)", "at(...): month 13 is out of range 1-12"},
    {"at(2025-00-01T00:00:00)", "at(...): month 0 is out of range 1-12"},
    {"at(2023-02-29T00:00:00)", "at(...): day 29 is out of range 1-28 for 2023-02"},
    {"at(2025-04-31T00:00:00)", "at(...): day 31 is out of range 1-30 for 2025-04"},
    {"at(2025-01-00T00:00:00)", "at(...): day 0 is out of range 1-31 for 2025-01"},
    {"at(2025-01-01T24:00:00)", "at(...): 24:00:00 is not a time of day (00:00:00-23:59:59)"},
    {"at(2025-01-01T23:60:00)", "at(...): 23:60:00 is not a time of day (00:00:00-23:59:59)"},
    {"at(2025-01-01T23:59:60)", "at(...): 23:59:60 is not a time of day (00:00:00-23:59:59)"},
    {"at(1969-12-31T23:59:59)", "at(...): year 1969 is out of range 1970-2199"},
    {"at(2200-01-01T00:00:00)", "at(...): year 2200 is out of range 1970-2199"},
    {"at(2025-01-01 00:00:00)",
     "at(...): expected yyyy-mm-ddThh:mm:ss, like at(2025-03-31T22:00:00)"},
    {"at(2025-1-1T00:00:00)",
     "at(...): expected yyyy-mm-ddThh:mm:ss, like at(2025-03-31T22:00:00)"},
    {"at(2025-01-01T00:00)", "at(...): expected yyyy-mm-ddThh:mm:ss, like at(2025-03-31T22:00:00)"},
    {"at(2025-01-01T00:00:00Z)",
     "at(...): expected yyyy-mm-ddThh:mm:ss, like at(2025-03-31T22:00:00)"},
    {"at()", "at(...): expected yyyy-mm-ddThh:mm:ss, like at(2025-03-31T22:00:00)"},
};

static void expect_refused(const char *text, const char *message)
{
    struct schedule s;
    char why[256];
    memset(&s, 0xa5, sizeof s);
    int rc = schedule_parse(text, &s, why, sizeof why);
    if (rc != -1)
        fail_msg("\"%s\" was accepted, expected: %s", text, message);
    if (strcmp(why, message) != 0)
        fail_msg("\"%s\":\n  message  %s\n  expected %s", text, why, message);
    struct schedule zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&s, &zero, sizeof s); /* nothing half-parsed is left behind */
}

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(refused_cases); i++)
        expect_refused(refused_cases[i].text, refused_cases[i].message);
}

/* Huge inputs: refused whole past 256 characters (without reading megabytes), and a long but
 * legal-length list is parsed. */
static void test_huge(void **state)
{
    (void)state;
    size_t big = 1 << 20;
    char *text = malloc(big + 1);
    assert_non_null(text);
    memset(text, '1', big);
    memcpy(text, "cron(", 5);
    text[big] = '\0';
    expect_refused(text, "schedule expression is longer than 256 characters");
    /* 257 characters: one too many */
    memset(text, ' ', 257);
    memcpy(text, "rate(5 minutes)", 15);
    text[257] = '\0';
    expect_refused(text, "schedule expression is longer than 256 characters");
    text[256] = '\0';
    struct schedule s;
    parse_ok(text, &s); /* 256 with the trailing blanks */
    /* every minute listed twice: longer than 256, so refused */
    size_t n = (size_t)snprintf(text, big, "cron(");
    for (int m = 0; m < 120; m++)
        n += (size_t)snprintf(text + n, big - n, "%s%d", m ? "," : "", m % 60);
    snprintf(text + n, big - n, " * * * ? *)");
    expect_refused(text, "schedule expression is longer than 256 characters");
    /* a long list within the limit */
    parse_ok("cron(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,"
             "30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,"
             "58,59 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 * * ? "
             "1970-2199)",
             &s);
    assert_int_equal(s.minutes, (1ULL << 60) - 1);
    free(text);
}

static void test_null_arguments(void **state)
{
    (void)state;
    struct schedule s;
    char why[256];
    assert_int_equal(schedule_parse(NULL, &s, why, sizeof why), -1);
    assert_string_equal(why, "schedule expression is missing");
    assert_int_equal(schedule_parse("rate(5 minutes)", NULL, why, sizeof why), -1);
    assert_int_equal(schedule_parse("rate(5 minute)", &s, NULL, 0), -1); /* no room for why */
    char tiny[8];
    assert_int_equal(schedule_parse("rate(5 minute)", &s, tiny, sizeof tiny), -1);
    assert_string_equal(tiny, "rate(.."); /* truncated, terminated */
    assert_int_equal(schedule_next(NULL, 0, 0, NULL, why, sizeof why), -1);
    parse_ok("cron(0 0 * * ? *)", &s);
    s.kind = (enum schedule_kind)42;
    assert_int_equal(schedule_next(&s, 0, 0, NULL, why, sizeof why), -1);
    assert_string_equal(why, "unknown schedule kind 42");
}

/* Callers may build a struct by hand (the autoscaler's scheduled actions might): fields out of
 * their ranges never crash nor fire outside 1970-2199. */
static void test_hand_built(void **state)
{
    (void)state;
    char why[256];
    struct schedule s;
    memset(&s, 0xff, sizeof s);
    s.kind = SCHEDULE_CRON;
    s.mday_any = false;
    s.wday_any = true;
    s.mday_last = false;
    s.mday_nearest_weekday = 0;
    s.years[3] &= ~(1ULL << (2199 - 1970 - 192)); /* 2199 off, the bits past it on */
    assert_int_equal(schedule_next(&s, 0, utc("2199-01-01T00:00:00Z"), NULL, why, sizeof why), -1);
    assert_int_equal(schedule_next(&s, 0, utc("2198-12-31T23:59:00Z"), NY, why, sizeof why),
                     utc("2198-12-31T23:59:00Z") + 60);
    static const struct {
        bool mday_last;
        int offset, nearest, wlast, nth, nth_day;
    } odd[] = {{true, -5, 0, 0, 0, 0},
               {true, 99, 0, 0, 0, 0},
               {true, INT32_MIN, 0, 0, 0, 0},
               {false, 0, 99, 0, 0, 0},
               {false, 0, -7, 0, 0, 0}};
    for (size_t i = 0; i < N(odd); i++) {
        memset(&s, 0, sizeof s);
        s.kind = SCHEDULE_CRON;
        s.minutes = ~0ULL;
        s.hours = ~0U; /* mdays stays 0: only the odd special form could choose a day */
        s.months = 0xffff;
        memset(s.years, 0xff, sizeof s.years);
        s.wday_any = true;
        s.mday_last = odd[i].mday_last;
        s.mday_last_offset = odd[i].offset;
        s.mday_nearest_weekday = odd[i].nearest;
        assert_int_equal(schedule_next(&s, 0, 0, NULL, why, sizeof why), -1);
    }
    static const int wodd[][3] = {{0, 99, 1},        {0, INT32_MIN, 0}, {INT32_MAX, 0, 0},
                                  {0, 0, INT32_MIN}, {0, 1, INT32_MIN}, {0, 1, INT32_MAX},
                                  {INT32_MIN, 0, 0}};
    for (size_t i = 0; i < N(wodd); i++) {
        memset(&s, 0, sizeof s);
        s.kind = SCHEDULE_CRON;
        s.minutes = ~0ULL;
        s.hours = ~0U;
        s.months = 0xffff;
        memset(s.years, 0xff, sizeof s.years);
        s.mday_any = true;
        s.wday_last = wodd[i][0];
        s.wday_nth = wodd[i][1];
        s.wday_nth_day = wodd[i][2];
        schedule_next(&s, 0, 0, NULL, why, sizeof why); /* any answer, no crash (ASan, UBSan) */
    }
    memset(&s, 0, sizeof s);
    s.kind = SCHEDULE_AT;
    s.at_year = INT32_MAX;
    assert_int_equal(schedule_next(&s, 0, 0, NULL, why, sizeof why), -1);
    s.kind = SCHEDULE_RATE;
    s.rate_seconds = 0;
    assert_int_equal(schedule_next(&s, 0, 0, NULL, why, sizeof why), -1);
}

/* ---- Timezones ------------------------------------------------------------------------------ */

static void test_timezone_valid(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool valid;
    } cases[] = {
        {NULL, true},
        {"", true},
        {"UTC", true},
        {"America/New_York", true},
        {"Asia/Kolkata", true},
        {"Etc/GMT+9", true},
        {"Australia/Lord_Howe", true},
        {"America/Argentina/Buenos_Aires", true},
        {"Mars/Olympus_Mons", false},
        {"america/new_york", false},
        {"America", false},  /* a directory */
        {"zone.tab", false}, /* a table, not a zone ('.' is refused anyway) */
        {"iso3166", false},  /* no such file */
        {"../../../etc/passwd", false},
        {"America/../UTC", false},
        {"./UTC", false},
        {"/etc/localtime", false},
        {"/usr/share/zoneinfo/UTC", false},
        {"America/", false},
        {"America//New_York", false},
        {"right/UTC", false}, /* leap-second zones */
        {"UTC ", false},
        {"America/New York", false},
        {"America/New_York\n", false},
    };
    for (size_t i = 0; i < N(cases); i++)
        if (schedule_timezone_valid(cases[i].name) != cases[i].valid)
            fail_msg("\"%s\": expected %s", cases[i].name ? cases[i].name : "(null)",
                     cases[i].valid ? "valid" : "refused");
    char longname[400];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(schedule_timezone_valid(longname));
}

static void test_unknown_timezone(void **state)
{
    (void)state;
    static const char *const exprs[] = {"cron(0 10 * * ? *)", "at(2030-01-01T00:00:00)",
                                        "rate(5 minutes)"};
    for (size_t i = 0; i < N(exprs); i++) {
        struct schedule s;
        char why[256];
        parse_ok(exprs[i], &s);
        assert_int_equal(schedule_next(&s, 0, 0, "Mars/Olympus_Mons", why, sizeof why), -1);
        assert_string_equal(why, "unknown timezone \"Mars/Olympus_Mons\"");
        assert_int_equal(schedule_next(&s, 0, 0, "../x\n", why, sizeof why), -1);
        assert_string_equal(why, "unknown timezone \"../x?\"");
    }
}

/* The caller's TZ is put back as it was: unset stays unset, a value stays that value, and local
 * time still follows it. */
static void test_tz_restored(void **state)
{
    (void)state;
    struct schedule s;
    char why[256];
    parse_ok("cron(0 9 * * ? *)", &s);
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

    unsetenv("TZ");
    tzset();
    assert_int_equal(schedule_next(&s, 0, 0, NY, why, sizeof why), 14 * 3600);
    assert_null(getenv("TZ"));

    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    assert_int_equal(schedule_next(&s, 0, 0, NY, why, sizeof why), 14 * 3600);
    assert_string_equal(getenv("TZ"), "Asia/Kolkata");
    time_t zero = 0;
    struct tm tm;
    localtime_r(&zero, &tm);
    assert_int_equal(tm.tm_hour * 60 + tm.tm_min, 5 * 60 + 30);

    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

/* ---- The cron search against brute force ----------------------------------------------------- */

/* An independent reading of the struct (UTC only): each day is checked against the definitions
 * (the nearest weekday as the Monday-Friday day of the month closest to n; the nth weekday as
 * (day - 1) / 7 + 1; the last such weekday as one with no same weekday 7 days later), then every
 * minute of a matching day, one by one. */
static int oracle_dim(int y, int m)
{
    struct tm a = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1};
    struct tm b = {.tm_year = y - 1900, .tm_mon = m, .tm_mday = 1};
    return (int)((timegm(&b) - timegm(&a)) / 86400);
}

static int oracle_wday(int y, int m, int d)
{
    struct tm t = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
    time_t u = timegm(&t);
    gmtime_r(&u, &t);
    return t.tm_wday;
}

static int oracle_nearest_weekday(int y, int m, int n)
{
    int dim = oracle_dim(y, m), best = 0;
    if (n > dim)
        return 0;
    for (int d = 1; d <= dim; d++) {
        int w = oracle_wday(y, m, d);
        if (w >= 1 && w <= 5 && (best == 0 || abs(d - n) < abs(best - n)))
            best = d;
    }
    return best;
}

static bool oracle_mday_match(const struct schedule *s, int y, int m, int d)
{
    int dim = oracle_dim(y, m);
    if (s->mday_last)
        return d == dim - s->mday_last_offset;
    if (s->mday_nearest_weekday == -1) {
        int last = dim;
        while (oracle_wday(y, m, last) == 0 || oracle_wday(y, m, last) == 6)
            last--;
        return d == last;
    }
    if (s->mday_nearest_weekday > 0)
        return d == oracle_nearest_weekday(y, m, s->mday_nearest_weekday);
    return (s->mdays >> d) & 1;
}

static bool oracle_wday_match(const struct schedule *s, int y, int m, int d)
{
    int dim = oracle_dim(y, m), w = oracle_wday(y, m, d);
    if (s->wday_nth)
        return w == s->wday_nth_day - 1 && (d - 1) / 7 + 1 == s->wday_nth;
    if (s->wday_last)
        return w == s->wday_last - 1 && d + 7 > dim;
    return (s->wdays >> w) & 1;
}

static int64_t oracle_next(const struct schedule *s, int64_t after, int horizon_days)
{
    int64_t day0 = after >= 0 ? after / 86400 : -((-after + 86399) / 86400);
    for (int64_t day = day0; day <= day0 + horizon_days; day++) {
        time_t u = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&u, &tm);
        int y = tm.tm_year + 1900, m = tm.tm_mon + 1, d = tm.tm_mday;
        if (y < 1970 || y > 2199 || !((s->years[(y - 1970) / 64] >> ((y - 1970) % 64)) & 1) ||
            !((s->months >> m) & 1))
            continue;
        if (s->wday_any ? !oracle_mday_match(s, y, m, d) : !oracle_wday_match(s, y, m, d))
            continue;
        for (int minute = 0; minute < 1440; minute++) {
            int64_t t = day * 86400 + minute * 60;
            if (t > after && ((s->hours >> (minute / 60)) & 1) &&
                ((s->minutes >> (minute % 60)) & 1))
                return t;
        }
    }
    return -2; /* nothing within the horizon */
}

static uint32_t xorshift(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void test_against_brute_force(void **state)
{
    (void)state;
    static const char *const minutes[] = {"0", "15", "0/15", "5,35", "*", "10-20/5", "50-10", "59"};
    static const char *const hours[] = {"0", "10", "8-17", "*", "20-2", "0/6", "23"};
    static const char *const mdays[] = {"*",   "1",  "15", "L",    "L-3",  "LW", "15W",  "1W",
                                        "31W", "30", "29", "1/10", "28-3", "31", "L-30", "2W"};
    static const char *const months[] = {"*", "2", "FEB", "JAN,JUL", "NOV-FEB", "1/4", "12"};
    static const char *const wdays[] = {"*",       "MON-FRI", "2#1", "6L", "L",   "1#5", "SAT,SUN",
                                        "FRI-MON", "7#5",     "2#5", "1L", "4#4", "3"};
    static const char *const years[] = {"*", "*", "2024-2026", "2025", "2028/4", "*"};
    uint32_t seed = 12345;
    int checked = 0;
    for (int i = 0; i < 400; i++) {
        char text[160];
        bool by_mday = xorshift(&seed) % 2; /* exactly one day field is ? */
        const char *mday = mdays[xorshift(&seed) % N(mdays)];
        const char *wday = wdays[xorshift(&seed) % N(wdays)];
        snprintf(text, sizeof text, "cron(%s %s %s %s %s %s)",
                 minutes[xorshift(&seed) % N(minutes)], hours[xorshift(&seed) % N(hours)],
                 by_mday ? mday : "?", months[xorshift(&seed) % N(months)], by_mday ? "?" : wday,
                 years[xorshift(&seed) % N(years)]);
        struct schedule s;
        char why[256];
        parse_ok(text, &s);
        int64_t after = 1704067200 + (int64_t)(xorshift(&seed) % (3u * 365 * 86400)); /* 2024+ */
        for (int k = 0; k < 5; k++) {
            int64_t got = schedule_next(&s, 0, after, NULL, why, sizeof why);
            int64_t want = oracle_next(&s, after, 4 * 366);
            char a[32], b[32], c[32];
            if (want == -2 ? !(got == -1 || got > after + 4 * 366 * 86400LL) : got != want)
                fail_msg("%s after %s: %s, brute force says %s", text, iso(after, a, sizeof a),
                         iso(got, b, sizeof b),
                         want == -2 ? "none within 4 years" : iso(want, c, sizeof c));
            if (got == -1 || want == -2)
                break;
            after = got;
            checked++;
        }
    }
    assert_true(checked > 1000); /* most combinations fire, some never do */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_never),
        cmocka_unit_test(test_extreme_instants),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_parsed_fields),
        cmocka_unit_test(test_blanks),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_huge),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_hand_built),
        cmocka_unit_test(test_timezone_valid),
        cmocka_unit_test(test_unknown_timezone),
        cmocka_unit_test(test_tz_restored),
        cmocka_unit_test(test_against_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
