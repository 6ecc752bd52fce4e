/* Schedule expressions as AWS writes them (EventBridge rules and Scheduler, Application Auto
 * Scaling's scheduled actions): `at(yyyy-mm-ddThh:mm:ss)`, `rate(value unit)` and
 * `cron(minutes hours day-of-month month day-of-week year)`, with AWS's cron syntax: `*`, `?`,
 * lists `,`, ranges `-`, increments `/`, `L` (last day of month / last <weekday> of month), `W`
 * (nearest weekday), `#` (nth weekday of month), month names JAN-DEC, day names SUN-SAT, and
 * day-of-week numbered 1-7 = SUN-SAT; one of day-of-month and day-of-week must be `?`.
 *
 * Pure: parsing and "when next" need no clock of their own. Times are Unix seconds; a timezone is
 * an IANA name (NULL or "" = UTC) in which at() and cron() fields are read (daylight-saving gaps
 * and repeats are handled as EventBridge Scheduler does: a time that does not exist is skipped to
 * the next that does; a repeated one fires once). The timezone is applied by switching TZ for the
 * duration of the call: not for use from several threads at once. */
#ifndef GANTRY_COMMON_SCHEDULE_H
#define GANTRY_COMMON_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum schedule_kind { SCHEDULE_AT, SCHEDULE_RATE, SCHEDULE_CRON };

struct schedule {
    enum schedule_kind kind;
    int64_t rate_seconds; /* SCHEDULE_RATE */
    /* SCHEDULE_AT: the local time fields (read in the timezone at schedule_next time) */
    int at_year, at_month, at_day, at_hour, at_minute, at_second;
    /* SCHEDULE_CRON: one bit per allowed value, plus AWS's special day forms */
    uint64_t minutes; /* bits 0-59 */
    uint32_t hours;   /* bits 0-23 */
    uint32_t mdays;   /* bits 1-31 */
    uint16_t months;  /* bits 1-12 */
    uint8_t wdays;    /* bits 0-6 = SUN-SAT */
    bool mday_any, wday_any;  /* `?` (or `*`) in that field */
    bool mday_last;           /* L in day-of-month */
    int mday_last_offset;     /* L-3: three days before the last */
    int mday_nearest_weekday; /* 15W: 15; 0 none; LW: -1 */
    int wday_last;            /* 5L: last Thursday: 1-7; 0 none */
    int wday_nth, wday_nth_day; /* 2#1: first Monday (wday_nth 1, wday_nth_day 2) */
    uint64_t years_lo, years_hi; /* bits of year-1970 (1970-2097); both zero with `*` */
};

/* Parses text. 0, or -1 with a message naming what is wrong ("cron(...): day-of-month and
 * day-of-week cannot both be given; one must be ?"). */
int schedule_parse(const char *text, struct schedule *out, char *why, size_t why_size);

/* The first time strictly after `after` at which the schedule fires, or -1 when it never does
 * again (an at() in the past, a cron whose years are over). rate() fires every rate_seconds
 * counted from `origin` (the time the schedule was created or loaded). Returns -1 with why set
 * for an unknown timezone. */
int64_t schedule_next(const struct schedule *s, int64_t origin, int64_t after, const char *timezone,
                      char *why, size_t why_size);

/* Whether `timezone` is an IANA name this machine knows (or NULL / "" for UTC). */
bool schedule_timezone_valid(const char *timezone);

#endif
