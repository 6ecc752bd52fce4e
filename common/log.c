#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static struct {
    char component[32];
    enum log_level level;
} logger = {"gantry", LOG_LEVEL_INFO};

void log_init(const char *component, enum log_level level)
{
    snprintf(logger.component, sizeof logger.component, "%s", component);
    logger.level = level;
}

void log_set_level(enum log_level level)
{
    logger.level = level;
}

bool log_enabled(enum log_level level)
{
    return level >= logger.level;
}

int log_level_parse(const char *text, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[2048];
    char stamp[32];
    clock_format_iso8601(clock_wall_ms(), stamp, sizeof stamp);
    int n =
        snprintf(line, sizeof line, "%s %-5s %s: ", stamp, level_names[level], logger.component);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* a truncated line still ends with its newline */
    line[len++] = '\n';
    /* One write per line keeps lines from several processes sharing a pipe whole. */
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
