/* Schedule expressions as AWS writes them (EventBridge rules and Scheduler, Application Auto
 * Scaling's scheduled actions): `at(yyyy-mm-ddThh:mm:ss)`, `rate(value unit)` and
 * `cron(minutes hours day-of-month month day-of-week year)`, with AWS's cron syntax: `*`, `?`,
 * lists `,`, ranges `-` (which may wrap: hours 20-2), increments `/`, `L` (last day of month /
 * last <weekday> of month; `L` alone in day-of-week is Saturday), `W` (nearest weekday), `#` (nth
 * weekday of month), month names JAN-DEC, day names SUN-SAT, and day-of-week numbered 1-7 =
 * SUN-SAT; exactly one of day-of-month and day-of-week must be `?`. docs/schedules.md is the
 * user's view.
 *
 * Pure: parsing and "when next" need no clock of their own. Times are Unix seconds; a timezone is
 * an IANA name (NULL, "" or "UTC" = UTC) in which at() and cron() fields are read. Daylight-saving
 * changes are handled as EventBridge Scheduler does: a cron time that does not exist that day (the
 * spring-forward gap) is skipped, and one that happens twice (the fall-back repeat) fires once, at
 * its first occurrence; an at() inside a gap fires when the gap ends. The timezone is applied by
 * switching the TZ environment variable for the duration of schedule_next (and restoring it):
 * not for use while another thread reads or writes the environment or local time. */
#ifndef GANTRY_COMMON_SCHEDULE_H
#define GANTRY_COMMON_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum schedule_kind { SCHEDULE_AT, SCHEDULE_RATE, SCHEDULE_CRON };

struct schedule {
    enum schedule_kind kind;
    int64_t rate_seconds; /* SCHEDULE_RATE: a day is 86400 s, as AWS counts it */
    /* SCHEDULE_AT: the local time fields (read in the timezone at schedule_next time) */
    int at_year, at_month, at_day, at_hour, at_minute, at_second;
    /* SCHEDULE_CRON: one bit per allowed value, plus AWS's special day forms. Exactly one of
     * mday_any and wday_any is set: the other day field alone chooses the days. */
    uint64_t minutes;           /* bits 0-59 */
    uint32_t hours;             /* bits 0-23 */
    uint32_t mdays;             /* bits 1-31 */
    uint16_t months;            /* bits 1-12 */
    uint8_t wdays;              /* bits 0-6 = SUN-SAT */
    bool mday_any, wday_any;    /* `?` in that field */
    bool mday_last;             /* L in day-of-month */
    int mday_last_offset;       /* L-3: three days before the last */
    int mday_nearest_weekday;   /* 15W: 15; 0 none; LW: -1 */
    int wday_last;              /* 5L: last Thursday: 1-7; 0 none */
    int wday_nth, wday_nth_day; /* 2#1: first Monday (wday_nth 1, wday_nth_day 2) */
    /* Bit (year - 1970) of years[(year - 1970) / 64]: AWS's whole range 1970-2199 (230 bits);
     * `*` sets all of them, so a cron never fires after 2199. */
    uint64_t years[4];
};

/* Parses text (at most 256 characters, AWS's limit; surrounding blanks ignored). 0, or -1 with a
 * message naming what is wrong ("cron(...): field 2 (hours): 24 is out of range 0-23"). */
int schedule_parse(const char *text, struct schedule *out, char *why, size_t why_size);

/* The first time strictly after `after` at which the schedule fires, or -1 when it never does
 * again (an at() in the past, a cron whose years are over). rate() fires at origin +
 * k * rate_seconds for every k >= 0 (origin: the time the schedule was created or loaded; asked
 * with after = origin it answers origin + rate_seconds). Returns -1 with why set for an unknown
 * timezone. Bounded work: a cron that can never match (30 FEB) answers -1 after scanning its
 * years month by month, never minute by minute. */
int64_t schedule_next(const struct schedule *s, int64_t origin, int64_t after, const char *timezone,
                      char *why, size_t why_size);

/* Whether `timezone` is an IANA name this machine knows (NULL, "" or "UTC" always are): a TZif
 * file under /usr/share/zoneinfo. Names with "..", "." or a leading '/' are refused, as are the
 * right/ zones (they count leap seconds, which Unix time does not). */
bool schedule_timezone_valid(const char *timezone);

#endif
