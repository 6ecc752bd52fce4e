/* Schedule expressions (schedule.h): parsing AWS's at(), rate() and cron() forms, and the next
 * time one fires.
 *
 * The cron search works on local wall-clock minutes with plain calendar arithmetic (no time zone
 * involved) and jumps: to the next allowed year through the year bitset, to the next allowed month,
 * to the next matching day through a per-month mask of the days that match, then to the next
 * allowed hour and minute. Only a found wall-clock minute is turned into an instant, through the
 * zone's offsets (localtime_r with TZ switched), which is where daylight-saving gaps and repeats
 * are settled. */
#include "common/schedule.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEXT_MAX 256 /* AWS's limit on a ScheduleExpression */
#define YEAR_MIN 1970
#define YEAR_MAX 2199
#define RATE_VALUE_MAX 999999999L
#define ZONE_DIR "/usr/share/zoneinfo"
#define ZONE_NAME_MAX 255
#define DAY_SECONDS 86400
/* Every offset tzdata has ever used lies within this; an instant's local time is within it too. */
#define OFFSET_WINDOW (30 * 3600)
/* How many found wall-clock minutes one schedule_next may reject (each one a minute inside a
 * fall-back repeat that already fired): a repeat lasts an hour, so this is a guard, not a limit
 * any real zone reaches. */
#define REJECT_MAX 4096

/* A local wall-clock minute, calendar fields only (at() adds its seconds to civil_seconds). */
struct civil {
    int y, mo, d, h, mi;
};

/* A piece of the input text, not NUL-terminated. */
struct span {
    const char *p;
    size_t len;
};

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t size, const char *fmt, ...)
{
    if (why && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The text as a message can show it: at most 24 characters, anything unprintable as '?'. */
static const char *show(char *buf, size_t size, struct span s)
{
    size_t n = s.len < 24 ? s.len : 24, o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++)
        buf[o++] = s.p[i] >= ' ' && s.p[i] < 127 ? s.p[i] : '?';
    for (int i = 0; s.len > n && i < 3 && o + 1 < size; i++)
        buf[o++] = '.';
    buf[o] = '\0';
    return buf;
}

/* ---- Calendar arithmetic (proleptic Gregorian, no time zone) ------------------------------ */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Days since 1970-01-01 (H. Hinnant's days_from_civil method: years counted from March, so the
 * leap day ends a year, in 400-year eras). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, struct civil *c)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    c->d = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->y = (int)(yoe + era * 400 + (c->mo <= 2));
}

/* 0 = Sunday. */
static int weekday(int64_t y, int m, int d)
{
    return (int)((days_from_civil(y, m, d) % 7 + 11) % 7);
}

static int64_t civil_seconds(const struct civil *c)
{
    return days_from_civil(c->y, c->mo, c->d) * DAY_SECONDS + c->h * 3600 + c->mi * 60;
}

/* The wall-clock minute that `secs` (local seconds, counted as if UTC) falls in. */
static void civil_from_seconds(int64_t secs, struct civil *c)
{
    int64_t days = floor_div(secs, DAY_SECONDS);
    int64_t rest = secs - days * DAY_SECONDS;
    civil_from_days(days, c);
    c->h = (int)(rest / 3600);
    c->mi = (int)(rest % 3600 / 60);
}

/* ---- Time zones ---------------------------------------------------------------------------- */

static bool is_utc_name(const char *tz)
{
    return tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0;
}

/* IANA names are letters, digits, '_', '-', '+' and '/' between non-empty components; with no
 * '.' allowed, "..", "." and hidden files are out, and a leading '/' would leave the directory. */
static bool zone_name_ok(const char *tz)
{
    size_t len = strnlen(tz, ZONE_NAME_MAX + 1);
    if (len == 0 || len > ZONE_NAME_MAX || tz[0] == '/' || tz[len - 1] == '/')
        return false;
    if (strncmp(tz, "right/", 6) == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = tz[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '+' || c == '/';
        if (!ok || (c == '/' && tz[i + 1] == '/'))
            return false;
    }
    return true;
}

bool schedule_timezone_valid(const char *tz)
{
    if (is_utc_name(tz))
        return true;
    if (!zone_name_ok(tz))
        return false;
    char path[sizeof ZONE_DIR + ZONE_NAME_MAX + 1];
    snprintf(path, sizeof path, "%s/%s", ZONE_DIR, tz);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    /* A directory (America) or one of tzdata's tables (zone.tab) is no zone: glibc would quietly
     * read it as UTC, so only a TZif file counts. */
    struct stat st;
    char magic[4];
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
              memcmp(magic, "TZif", 4) == 0;
    close(fd);
    return ok;
}

/* The TZ value schedule_next found, to put back. */
struct tz_saved {
    char *value;
    bool was_set;
};

/* Switches local time to zone `tz` (already validated). The absolute path makes glibc read the
 * very file schedule_timezone_valid checked, whatever TZDIR says. */
static int tz_enter(const char *tz, struct tz_saved *saved)
{
    const char *old = getenv("TZ");
    saved->was_set = old != NULL;
    saved->value = old ? strdup(old) : NULL;
    if (old && !saved->value)
        return -1;
    char value[sizeof ZONE_DIR + ZONE_NAME_MAX + 2];
    snprintf(value, sizeof value, ":%s/%s", ZONE_DIR, tz);
    if (setenv("TZ", value, 1) != 0) {
        free(saved->value);
        return -1;
    }
    tzset();
    return 0;
}

static void tz_leave(struct tz_saved *saved)
{
    if (saved->was_set)
        setenv("TZ", saved->value, 1);
    else
        unsetenv("TZ");
    free(saved->value);
    tzset();
}

/* The zone's offset from UTC (seconds east) at instant u. */
static int64_t zone_offset(bool utc, int64_t u)
{
    if (utc)
        return 0;
    time_t t = (time_t)u;
    struct tm tm;
    return localtime_r(&t, &tm) ? tm.tm_gmtoff : 0;
}

/* The instant at which local time `g` (seconds, counted as if UTC) happens: 0 with *u the first
 * instant it does (the earlier of the two in a fall-back repeat), or 1 when g falls in a
 * spring-forward gap, with *u the instant the gap ends. Each offset the zone uses around g is
 * tried; an offset o fits when the zone really is at o at g - o. Assumes at most one offset change
 * within OFFSET_WINDOW of g; a zone with two would at worst get a time off by their difference,
 * and the search would still end. */
static int local_to_instant(bool utc, int64_t g, int64_t *u)
{
    if (utc) {
        *u = g;
        return 0;
    }
    int64_t offsets[3] = {zone_offset(false, g - OFFSET_WINDOW), zone_offset(false, g),
                          zone_offset(false, g + OFFSET_WINDOW)};
    int64_t lo_off = offsets[0], hi_off = offsets[0], best = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        int64_t o = offsets[i];
        lo_off = o < lo_off ? o : lo_off;
        hi_off = o > hi_off ? o : hi_off;
        if (zone_offset(false, g - o) == o && g - o < best)
            best = g - o;
    }
    if (best != INT64_MAX) {
        *u = best;
        return 0;
    }
    /* In the gap local time jumps over g: find the first instant whose local time reaches g.
     * Local time rises monotonically over [g - hi_off, g - lo_off], which holds that jump. */
    int64_t lo = g - hi_off, hi = g - lo_off;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + zone_offset(false, mid) >= g)
            hi = mid;
        else
            lo = mid + 1;
    }
    *u = lo;
    return 1;
}

/* ---- When next ------------------------------------------------------------------------------ */

/* The lowest set bit of `set` in [from, max], or -1 (max <= 63). */
static int next_bit(uint64_t set, int from, int max)
{
    if (from > max)
        return -1;
    uint64_t upto = max == 63 ? ~0ULL : (2ULL << max) - 1;
    uint64_t rest = set & upto & (~0ULL << from);
    return rest ? __builtin_ctzll(rest) : -1;
}

/* The first allowed year >= y, or -1. */
static int next_year(const struct schedule *s, int y)
{
    int i = (y < YEAR_MIN ? YEAR_MIN : y) - YEAR_MIN;
    for (; i <= YEAR_MAX - YEAR_MIN; i = (i / 64 + 1) * 64) {
        int bit = next_bit(s->years[i / 64], i % 64, 63);
        if (bit >= 0 && i / 64 * 64 + bit <= YEAR_MAX - YEAR_MIN)
            return YEAR_MIN + i / 64 * 64 + bit;
    }
    return -1;
}

static uint32_t day_bit(int d, int dim)
{
    return d >= 1 && d <= dim ? 1U << d : 0;
}

/* The weekday (Monday to Friday) nearest day d, without leaving the month: 15W. */
static int nearest_weekday(int d, int dim, int w1)
{
    int wd = (w1 + d - 1) % 7;
    if (wd == 6) /* Saturday: the Friday before, or the Monday after when that is last month */
        return d == 1 ? 3 : d - 1;
    if (wd == 0) /* Sunday: the Monday after, or the Friday before when that is next month */
        return d == dim ? d - 2 : d + 1;
    return d;
}

/* The days of a month that day-of-month chooses, as bits 1-31; w1 is the 1st's weekday. */
static uint32_t mday_mask(const struct schedule *s, int dim, int w1)
{
    if (s->mday_last) /* the offset is checked: the struct may have been built by hand */
        return s->mday_last_offset >= 0 && s->mday_last_offset <= 30
                   ? day_bit(dim - s->mday_last_offset, dim)
                   : 0;
    if (s->mday_nearest_weekday == -1)
        return day_bit(nearest_weekday(dim, dim, w1), dim);
    if (s->mday_nearest_weekday > 0)
        return s->mday_nearest_weekday <= dim
                   ? day_bit(nearest_weekday(s->mday_nearest_weekday, dim, w1), dim)
                   : 0;
    return s->mdays;
}

/* The days of a month that day-of-week chooses. */
static uint32_t wday_mask(const struct schedule *s, int dim, int w1)
{
    if (s->wday_last > 7 ||
        (s->wday_nth > 0 && (s->wday_nth > 5 || s->wday_nth_day < 1 || s->wday_nth_day > 7)))
        return 0; /* not a parsed schedule */
    if (s->wday_nth > 0) {
        int first = 1 + ((s->wday_nth_day - 1 - w1) % 7 + 7) % 7;
        return day_bit(first + 7 * (s->wday_nth - 1), dim);
    }
    if (s->wday_last > 0) {
        int wd_last = (w1 + dim - 1) % 7;
        return day_bit(dim - ((wd_last - (s->wday_last - 1)) % 7 + 7) % 7, dim);
    }
    uint32_t mask = 0;
    for (int d = 1; d <= dim; d++)
        if (s->wdays & (1U << ((w1 + d - 1) % 7)))
            mask |= 1U << d;
    return mask;
}

/* The first matching day >= d of month m of year y, or -1. */
static int next_day(const struct schedule *s, int y, int m, int d)
{
    int dim = days_in_month(y, m);
    if (d > dim)
        return -1;
    int w1 = weekday(y, m, 1);
    uint32_t mask = s->wday_any ? mday_mask(s, dim, w1) : wday_mask(s, dim, w1);
    mask &= (uint32_t)((2ULL << dim) - 1) & ~((1U << d) - 1);
    return mask ? __builtin_ctz(mask) : -1;
}

static void start_of(struct civil *c, int y, int mo, int d)
{
    *c = (struct civil){y, mo, d, 0, 0};
}

/* Moves c to the first wall-clock minute >= c that the cron fields allow; false when there is
 * none up to 2199. Each turn either returns or moves c to the next allowed year, month, day or
 * hour, so a year that never matches costs at most a dozen turns. */
static bool cron_match_from(const struct schedule *s, struct civil *c)
{
    for (;;) {
        int y = next_year(s, c->y);
        if (y < 0)
            return false;
        if (y != c->y)
            start_of(c, y, 1, 1);
        int mo = next_bit(s->months, c->mo, 12);
        if (mo < 0) {
            start_of(c, c->y + 1, 1, 1);
            continue;
        }
        if (mo != c->mo)
            start_of(c, c->y, mo, 1);
        int d = next_day(s, c->y, c->mo, c->d);
        if (d < 0) {
            if (c->mo < 12)
                start_of(c, c->y, c->mo + 1, 1);
            else
                start_of(c, c->y + 1, 1, 1);
            continue;
        }
        if (d != c->d)
            start_of(c, c->y, c->mo, d);
        int h = next_bit(s->hours, c->h, 23);
        if (h < 0) {
            start_of(c, c->y, c->mo, c->d + 1); /* next_day answers -1 past the month's end */
            continue;
        }
        if (h != c->h) {
            c->h = h;
            c->mi = 0;
        }
        int mi = next_bit(s->minutes, c->mi, 59);
        if (mi < 0) {
            c->h++; /* next_bit answers -1 for hour 24 */
            c->mi = 0;
            continue;
        }
        c->mi = mi;
        return true;
    }
}

static int64_t cron_next(const struct schedule *s, bool utc, int64_t after, char *why, size_t size)
{
    /* No local time in 1970-2199 lies outside these instants, in any zone; clamping keeps the
     * arithmetic far from overflow. */
    const int64_t first = -2 * DAY_SECONDS;
    const int64_t last = days_from_civil(YEAR_MAX + 1, 1, 3) * DAY_SECONDS;
    if (after >= last)
        return -1;
    int64_t from = after < first ? first : after;
    int64_t g = floor_div(from + zone_offset(utc, from), 60) * 60 + 60;
    for (int i = 0; i < REJECT_MAX; i++) {
        struct civil c;
        civil_from_seconds(g, &c);
        if (!cron_match_from(s, &c))
            return -1;
        g = civil_seconds(&c);
        int64_t u;
        int gap = local_to_instant(utc, g, &u);
        if (!gap && u > after)
            return u;
        /* A gap skips the minute, and the whole gap with it; a repeat whose first occurrence is
         * over already fired. Either way the search goes on from a later wall-clock minute. */
        int64_t next = g + 60;
        if (gap) {
            int64_t end = floor_div(u + zone_offset(utc, u) + 59, 60) * 60;
            next = end > next ? end : next;
        }
        g = next;
    }
    return fail(why, size, "cron(...): no fire time found within %d candidates", REJECT_MAX);
}

static int64_t at_next(const struct schedule *s, bool utc, int64_t after)
{
    if (s->at_year < YEAR_MIN || s->at_year > YEAR_MAX || s->at_month < 1 || s->at_month > 12 ||
        s->at_day < 1 || s->at_day > days_in_month(s->at_year, s->at_month) || s->at_hour < 0 ||
        s->at_hour > 23 || s->at_minute < 0 || s->at_minute > 59 || s->at_second < 0 ||
        s->at_second > 59)
        return -1;
    struct civil c = {s->at_year, s->at_month, s->at_day, s->at_hour, s->at_minute};
    int64_t u;
    local_to_instant(utc, civil_seconds(&c) + s->at_second, &u);
    return u > after ? u : -1;
}

static int64_t rate_next(int64_t period, int64_t origin, int64_t after)
{
    if (period <= 0)
        return -1;
    if (after < origin)
        return origin;
    int64_t diff, step, next;
    if (__builtin_sub_overflow(after, origin, &diff) ||
        __builtin_mul_overflow(diff / period + 1, period, &step) ||
        __builtin_add_overflow(origin, step, &next))
        return -1;
    return next;
}

int64_t schedule_next(const struct schedule *s, int64_t origin, int64_t after, const char *timezone,
                      char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    if (!s)
        return fail(why, why_size, "no schedule");
    char shown[32];
    if (!schedule_timezone_valid(timezone))
        return fail(why, why_size, "unknown timezone \"%s\"",
                    show(shown, sizeof shown, (struct span){timezone, strnlen(timezone, 64)}));
    if (s->kind == SCHEDULE_RATE)
        return rate_next(s->rate_seconds, origin, after);
    if (s->kind != SCHEDULE_AT && s->kind != SCHEDULE_CRON)
        return fail(why, why_size, "unknown schedule kind %d", (int)s->kind);
    bool utc = is_utc_name(timezone);
    struct tz_saved saved;
    if (!utc && tz_enter(timezone, &saved) < 0)
        return fail(why, why_size, "cannot switch to timezone \"%s\"",
                    show(shown, sizeof shown, (struct span){timezone, strlen(timezone)}));
    int64_t next =
        s->kind == SCHEDULE_AT ? at_next(s, utc, after) : cron_next(s, utc, after, why, why_size);
    if (!utc)
        tz_leave(&saved);
    return next;
}

/* ---- Parsing: shared helpers ------------------------------------------------------------------
 */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static struct span trim(struct span s)
{
    while (s.len && is_blank(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && is_blank(s.p[s.len - 1]))
        s.len--;
    return s;
}

static bool span_is(struct span s, const char *word)
{
    return s.len == strlen(word) && memcmp(s.p, word, s.len) == 0;
}

static bool span_is_nocase(struct span s, const char *word)
{
    if (s.len != strlen(word))
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (upper(s.p[i]) != word[i])
            return false;
    return true;
}

static bool span_has(struct span s, char c)
{
    return s.len && memchr(s.p, c, s.len) != NULL;
}

static bool span_has_nocase(struct span s, char c)
{
    for (size_t i = 0; i < s.len; i++)
        if (upper(s.p[i]) == c)
            return true;
    return false;
}

/* The span before the first c (all of it when there is none); *rest is what follows c. */
static struct span span_cut(struct span s, char c, struct span *rest, bool *found)
{
    const char *at = s.len ? memchr(s.p, c, s.len) : NULL;
    *found = at != NULL;
    if (!at) {
        *rest = (struct span){s.p + s.len, 0};
        return s;
    }
    *rest = (struct span){at + 1, s.len - (size_t)(at - s.p) - 1};
    return (struct span){s.p, (size_t)(at - s.p)};
}

/* A whole number of digits only; more than nine digits read as RATE_VALUE_MAX + 1, which every
 * range refuses. */
static bool parse_uint(struct span s, long *out)
{
    if (s.len == 0)
        return false;
    long v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_digit(s.p[i]))
            return false;
        v = v > RATE_VALUE_MAX ? v : v * 10 + (s.p[i] - '0');
    }
    *out = v > RATE_VALUE_MAX ? RATE_VALUE_MAX + 1 : v;
    return true;
}

/* Splits s at runs of blanks into at most max fields; answers how many there are in all. */
static int split_fields(struct span s, struct span *fields, int max)
{
    int n = 0;
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && is_blank(s.p[i]))
            i++;
        if (i == s.len)
            break;
        size_t start = i;
        while (i < s.len && !is_blank(s.p[i]))
            i++;
        if (n < max)
            fields[n] = (struct span){s.p + start, i - start};
        n++;
    }
    return n;
}

/* ---- Parsing: cron ------------------------------------------------------------------------------
 */

static const char *const MONTH_NAMES[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const DAY_NAMES[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

enum { F_MINUTES, F_HOURS, F_MDAY, F_MONTH, F_WDAY, F_YEAR, F_COUNT };

struct field_spec {
    const char *name;
    int min, max;
    const char *specials;     /* the wildcards AWS allows in it */
    const char *const *names; /* month and day names, from min on */
    const char *what;         /* what a name must be */
};

static const struct field_spec FIELDS[F_COUNT] = {
    {"minutes", 0, 59, ", - * /", NULL, NULL},
    {"hours", 0, 23, ", - * /", NULL, NULL},
    {"day-of-month", 1, 31, ", - * ? / L W", NULL, NULL},
    {"month", 1, 12, ", - * /", MONTH_NAMES, "a month (1-12 or JAN-DEC)"},
    {"day-of-week", 1, 7, ", - * ? L #", DAY_NAMES, "a day of the week (1-7 or SUN-SAT)"},
    {"year", YEAR_MIN, YEAR_MAX, ", - * /", NULL, NULL},
};

/* One field being parsed, for its messages. */
struct field_ctx {
    const struct field_spec *spec;
    int index;
    char *why;
    size_t size;
};

/* Bits (value - min) of the values a field allows; 256 bits cover the year's 230. */
struct value_set {
    uint64_t bits[4];
};

__attribute__((format(printf, 2, 3))) static int field_fail(const struct field_ctx *f,
                                                            const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(f->why, f->size, "cron(...): field %d (%s): %s", f->index + 1, f->spec->name, msg);
}

static int name_value(const struct field_spec *spec, struct span s)
{
    for (int i = 0; spec->names && i <= spec->max - spec->min; i++)
        if (span_is_nocase(s, spec->names[i]))
            return spec->min + i;
    return -1;
}

/* A value of the field: a number in its range or, for month and day-of-week, a name. */
static int parse_value(const struct field_ctx *f, struct span s, int *out)
{
    char shown[32];
    long v;
    if (parse_uint(s, &v)) {
        if (v < f->spec->min || v > f->spec->max)
            return field_fail(f, "%s is out of range %d-%d", show(shown, sizeof shown, s),
                              f->spec->min, f->spec->max);
        *out = (int)v;
        return 0;
    }
    int named = name_value(f->spec, s);
    if (named >= 0) {
        *out = named;
        return 0;
    }
    if (s.len == 0)
        return field_fail(f, "a value is missing");
    if (f->spec->names)
        return field_fail(f, "\"%s\" is not %s", show(shown, sizeof shown, s), f->spec->what);
    return field_fail(f, "\"%s\" is not a number", show(shown, sizeof shown, s));
}

static int parse_step(const struct field_ctx *f, struct span item, struct span step, int *out)
{
    char shown[32];
    long v;
    int max = f->spec->max - f->spec->min;
    if (step.len == 0)
        return field_fail(f, "\"%s\" has no step after /", show(shown, sizeof shown, item));
    if (!parse_uint(step, &v))
        return field_fail(f, "step \"%s\" is not a number", show(shown, sizeof shown, step));
    if (v < 1 || v > max)
        return field_fail(f, "step %s is out of range 1-%d", show(shown, sizeof shown, step), max);
    *out = (int)v;
    return 0;
}

/* Bits a-b (a <= b), a word at a time: `*` in the year field is 230 of them. */
static void fill_bits(struct value_set *set, int a, int b)
{
    for (int w = a / 64; w <= b / 64; w++) {
        int from = w == a / 64 ? a % 64 : 0, to = w == b / 64 ? b % 64 : 63;
        set->bits[w] |= (~0ULL << from) & (~0ULL >> (63 - to));
    }
}

/* lo-hi, wrapping past the field's end when lo > hi (hours 20-2 are 20-23 and 0-2), every
 * inc-th value. */
static void add_values(const struct field_spec *spec, int lo, int hi, int inc,
                       struct value_set *set)
{
    if (inc == 1 && lo <= hi) {
        fill_bits(set, lo - spec->min, hi - spec->min);
        return;
    }
    int span = spec->max - spec->min + 1;
    int count = lo <= hi ? hi - lo + 1 : hi - lo + span + 1;
    int bit = lo - spec->min;
    for (int i = 0; i < count; i += inc) {
        set->bits[bit / 64] |= 1ULL << (bit % 64);
        bit += inc; /* inc < span, so one wrap at most */
        if (bit >= span)
            bit -= span;
    }
}

/* One item of a list: *, a value, a range a-b, each optionally /step (a/step runs to the end). */
static int parse_item(const struct field_ctx *f, struct span item, struct value_set *set)
{
    char shown[32];
    bool has_step, has_dash;
    struct span step, hi_text;
    struct span base = span_cut(item, '/', &step, &has_step);
    struct span lo_text = span_cut(base, '-', &hi_text, &has_dash);
    int lo, hi, inc = 1;
    if (has_step && base.len == 0)
        return field_fail(f, "\"%s\" has no value before /", show(shown, sizeof shown, item));
    if (span_is(base, "*")) {
        lo = f->spec->min;
        hi = f->spec->max;
    } else if (has_dash) {
        if (lo_text.len == 0 || hi_text.len == 0 || span_has(hi_text, '-'))
            return field_fail(f, "\"%s\" is not a range (like 8-17)",
                              show(shown, sizeof shown, base));
        if (parse_value(f, lo_text, &lo) < 0 || parse_value(f, hi_text, &hi) < 0)
            return -1;
        if (f->index == F_YEAR && lo > hi)
            return field_fail(f, "range %d-%d runs backwards", lo, hi);
    } else {
        if (parse_value(f, base, &lo) < 0)
            return -1;
        hi = has_step ? f->spec->max : lo;
    }
    if (has_step && parse_step(f, item, step, &inc) < 0)
        return -1;
    add_values(f->spec, lo, hi, inc, set);
    return 0;
}

static int parse_list(const struct field_ctx *f, struct span field, struct value_set *set)
{
    struct span rest = field;
    bool more = true;
    while (more) {
        struct span item = span_cut(rest, ',', &rest, &more);
        if (item.len == 0)
            return field_fail(f, "a value is missing in the list");
        if (parse_item(f, item, set) < 0)
            return -1;
    }
    return 0;
}

/* L, L-n, LW or nW: each stands alone in day-of-month, as in Quartz, whose syntax AWS uses. */
static int parse_mday_special(const struct field_ctx *f, struct span field, struct schedule *out)
{
    char shown[32];
    long v;
    if (span_has(field, ','))
        return field_fail(f, "L and W cannot be combined with other values");
    if (span_is_nocase(field, "L")) {
        out->mday_last = true;
        return 0;
    }
    if (span_is_nocase(field, "LW")) {
        out->mday_nearest_weekday = -1;
        return 0;
    }
    struct span num = {field.p + 2, field.len >= 2 ? field.len - 2 : 0};
    if (field.len > 2 && upper(field.p[0]) == 'L' && field.p[1] == '-' && parse_uint(num, &v)) {
        if (v < 1 || v > 30)
            return field_fail(f, "L-%s is out of range L-1 to L-30",
                              show(shown, sizeof shown, num));
        out->mday_last = true;
        out->mday_last_offset = (int)v;
        return 0;
    }
    num = (struct span){field.p, field.len - 1};
    if (field.len > 1 && upper(field.p[field.len - 1]) == 'W' && parse_uint(num, &v)) {
        if (v < 1 || v > 31)
            return field_fail(f, "%sW is out of range 1W-31W", show(shown, sizeof shown, num));
        out->mday_nearest_weekday = (int)v;
        return 0;
    }
    return field_fail(f, "\"%s\" is not a valid use of L or W (L, L-3, LW or 15W)",
                      show(shown, sizeof shown, field));
}

/* n#k: the k-th such weekday of the month; one per field, as AWS says. */
static int parse_wday_nth(const struct field_ctx *f, struct span field, struct schedule *out)
{
    char shown[32], whole[32];
    bool found;
    struct span nth;
    struct span day = span_cut(field, '#', &nth, &found);
    long k;
    int d;
    if (span_has(field, ','))
        return field_fail(f, "# cannot be combined with other values (one n#k per field)");
    if (day.len == 0 || span_has(day, '-') || span_has(day, '/') || span_has(day, '*') ||
        !parse_uint(nth, &k))
        return field_fail(f, "\"%s\" is not a valid use of # (like 2#1, the first Monday)",
                          show(shown, sizeof shown, field));
    if (parse_value(f, day, &d) < 0)
        return -1;
    if (k < 1 || k > 5)
        return field_fail(f, "occurrence %s in \"%s\" is out of range 1-5",
                          show(shown, sizeof shown, nth), show(whole, sizeof whole, field));
    out->wday_nth = (int)k;
    out->wday_nth_day = d;
    return 0;
}

/* L alone (the week's last day, Saturday) or nL (the month's last such weekday). */
static int parse_wday_last(const struct field_ctx *f, struct span field, struct schedule *out,
                           struct value_set *set)
{
    char shown[32];
    int d;
    if (span_has(field, ','))
        return field_fail(f, "L cannot be combined with other values");
    if (span_is_nocase(field, "L")) {
        add_values(f->spec, 7, 7, 1, set);
        return 0;
    }
    struct span day = {field.p, field.len - 1};
    if (upper(field.p[field.len - 1]) != 'L' || span_has_nocase(day, 'L') || span_has(day, '-') ||
        span_has(day, '/') || span_has(day, '*'))
        return field_fail(f, "\"%s\" is not a valid use of L (L, or 6L: the last Friday)",
                          show(shown, sizeof shown, field));
    if (parse_value(f, day, &d) < 0)
        return -1;
    out->wday_last = d;
    return 0;
}

/* Refuses a wildcard the field does not take, naming the ones it does. */
static int check_specials(const struct field_ctx *f, struct span field)
{
    for (size_t i = 0; i < field.len; i++) {
        char c = field.p[i];
        if (c == '\0' || !strchr(",-*?/#", c) || strchr(f->spec->specials, c))
            continue;
        if (c == '?')
            return field_fail(f, "? is only allowed in day-of-month and day-of-week");
        return field_fail(f, "%c is not allowed here (only %s)", c, f->spec->specials);
    }
    if (span_has(field, '?') && field.len != 1)
        return field_fail(f, "? must be the whole field");
    return 0;
}

static void store_set(int index, const struct value_set *set, struct schedule *out)
{
    switch (index) {
    case F_MINUTES:
        out->minutes = set->bits[0];
        break;
    case F_HOURS:
        out->hours = (uint32_t)set->bits[0];
        break;
    case F_MDAY: /* bit 0 is day 1: shift so bit d is day d */
        out->mdays = (uint32_t)(set->bits[0] << 1);
        break;
    case F_MONTH:
        out->months = (uint16_t)(set->bits[0] << 1);
        break;
    case F_WDAY: /* bit 0 is 1 = SUN, as wdays wants */
        out->wdays |= (uint8_t)set->bits[0];
        break;
    default:
        memcpy(out->years, set->bits, sizeof out->years);
        break;
    }
}

static int parse_field(const struct field_ctx *f, struct span field, struct schedule *out)
{
    struct value_set set = {{0}};
    if (check_specials(f, field) < 0)
        return -1;
    if (span_is(field, "?")) {
        *(f->index == F_MDAY ? &out->mday_any : &out->wday_any) = true;
        return 0;
    }
    int rc;
    if (f->index == F_MDAY && (span_has_nocase(field, 'L') || span_has_nocase(field, 'W')))
        rc = parse_mday_special(f, field, out);
    else if (f->index == F_WDAY && span_has(field, '#'))
        rc = parse_wday_nth(f, field, out);
    else if (f->index == F_WDAY && span_has_nocase(field, 'L'))
        rc = parse_wday_last(f, field, out, &set);
    else
        rc = parse_list(f, field, &set);
    if (rc == 0)
        store_set(f->index, &set, out);
    return rc;
}

static int parse_cron(struct span body, struct schedule *out, char *why, size_t size)
{
    struct span fields[F_COUNT];
    int n = split_fields(body, fields, F_COUNT);
    if (n != F_COUNT)
        return fail(why, size,
                    "cron(...): %d field%s given; expected 6 (minutes hours day-of-month month "
                    "day-of-week year)",
                    n, n == 1 ? "" : "s");
    out->kind = SCHEDULE_CRON;
    for (int i = 0; i < F_COUNT; i++) {
        struct field_ctx f = {&FIELDS[i], i, why, size};
        if (parse_field(&f, fields[i], out) < 0)
            return -1;
    }
    if (!out->mday_any && !out->wday_any)
        return fail(why, size,
                    "cron(...): day-of-month and day-of-week cannot both be given; one must be ?");
    if (out->mday_any && out->wday_any)
        return fail(why, size,
                    "cron(...): day-of-month and day-of-week cannot both be ?; one must choose "
                    "the days");
    return 0;
}

/* ---- Parsing: rate and at -----------------------------------------------------------------------
 */

static int parse_rate(struct span body, struct schedule *out, char *why, size_t size)
{
    static const struct {
        const char *name;
        int64_t seconds;
    } units[] = {{"minute", 60}, {"hour", 3600}, {"day", DAY_SECONDS}};
    char shown[32];
    struct span f[2];
    long v;
    if (split_fields(body, f, 2) != 2)
        return fail(why, size, "rate(...): expected a value and a unit, like rate(5 minutes)");
    if (!parse_uint(f[0], &v) || v < 1)
        return fail(why, size, "rate(...): value \"%s\" is not a positive whole number",
                    show(shown, sizeof shown, f[0]));
    if (v > RATE_VALUE_MAX)
        return fail(why, size, "rate(...): value %s is too large (at most %ld)",
                    show(shown, sizeof shown, f[0]), RATE_VALUE_MAX);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].name);
        if (f[1].len < n || f[1].len > n + 1 || memcmp(f[1].p, units[i].name, n) != 0 ||
            (f[1].len == n + 1 && f[1].p[n] != 's'))
            continue;
        bool plural = f[1].len == n + 1;
        /* EventBridge refuses rate(1 hours) and rate(5 hour); so does Gantry, to stay portable */
        if (v == 1 && plural)
            return fail(why, size, "rate(...): a value of 1 takes the singular unit: rate(1 %s)",
                        units[i].name);
        if (v != 1 && !plural)
            return fail(why, size,
                        "rate(...): a value other than 1 takes the plural unit: rate(%ld %ss)", v,
                        units[i].name);
        out->kind = SCHEDULE_RATE;
        out->rate_seconds = v * units[i].seconds;
        return 0;
    }
    return fail(why, size,
                "rate(...): unknown unit \"%s\" (minute, minutes, hour, hours, day or days)",
                show(shown, sizeof shown, f[1]));
}

/* Digits of text at [at, at + n), known to be digits. */
static int digits_at(struct span s, size_t at, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s.p[at + i] - '0');
    return v;
}

static int parse_at(struct span body, struct schedule *out, char *why, size_t size)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    body = trim(body);
    bool ok = body.len == sizeof shape - 1;
    for (size_t i = 0; ok && i < body.len; i++)
        ok = shape[i] == 'd' ? is_digit(body.p[i]) : body.p[i] == shape[i];
    if (!ok)
        return fail(why, size,
                    "at(...): expected yyyy-mm-ddThh:mm:ss, like at(2025-03-31T22:00:00)");
    int y = digits_at(body, 0, 4), mo = digits_at(body, 5, 2), d = digits_at(body, 8, 2);
    int h = digits_at(body, 11, 2), mi = digits_at(body, 14, 2), sec = digits_at(body, 17, 2);
    if (y < YEAR_MIN || y > YEAR_MAX)
        return fail(why, size, "at(...): year %d is out of range %d-%d", y, YEAR_MIN, YEAR_MAX);
    if (mo < 1 || mo > 12)
        return fail(why, size, "at(...): month %d is out of range 1-12", mo);
    if (d < 1 || d > days_in_month(y, mo))
        return fail(why, size, "at(...): day %d is out of range 1-%d for %04d-%02d", d,
                    days_in_month(y, mo), y, mo);
    if (h > 23 || mi > 59 || sec > 59)
        return fail(why, size, "at(...): %02d:%02d:%02d is not a time of day (00:00:00-23:59:59)",
                    h, mi, sec);
    *out = (struct schedule){.kind = SCHEDULE_AT,
                             .at_year = y,
                             .at_month = mo,
                             .at_day = d,
                             .at_hour = h,
                             .at_minute = mi,
                             .at_second = sec};
    return 0;
}

int schedule_parse(const char *text, struct schedule *out, char *why, size_t why_size)
{
    static const struct {
        const char *prefix;
        int (*parse)(struct span, struct schedule *, char *, size_t);
    } kinds[] = {{"at(", parse_at}, {"rate(", parse_rate}, {"cron(", parse_cron}};
    char shown[32];
    if (why && why_size)
        why[0] = '\0';
    if (!out)
        return fail(why, why_size, "no schedule to parse into");
    memset(out, 0, sizeof *out);
    if (!text)
        return fail(why, why_size, "schedule expression is missing");
    size_t len = strnlen(text, TEXT_MAX + 1);
    if (len > TEXT_MAX)
        return fail(why, why_size, "schedule expression is longer than %d characters", TEXT_MAX);
    struct span t = trim((struct span){text, len});
    if (t.len == 0)
        return fail(why, why_size, "schedule expression is empty");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (t.len < n || memcmp(t.p, kinds[i].prefix, n) != 0)
            continue;
        struct span body = {t.p + n, t.len - n}, after;
        bool closed;
        body = span_cut(body, ')', &after, &closed);
        if (!closed)
            return fail(why, why_size, "%.*s...): missing the closing )", (int)n, t.p);
        if (after.len)
            return fail(why, why_size, "%.*s...): unexpected \"%s\" after )", (int)n, t.p,
                        show(shown, sizeof shown, trim(after)));
        int rc = kinds[i].parse(body, out, why, why_size);
        if (rc < 0)
            memset(out, 0, sizeof *out);
        return rc;
    }
    return fail(why, why_size,
                "unknown schedule expression \"%s\": expected at(...), rate(...) or cron(...)",
                show(shown, sizeof shown, t));
}
