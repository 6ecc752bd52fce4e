#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/core.h"

void core_arn(const struct core *core, char *out, size_t size, const char *fmt, ...)
{
    int n =
        snprintf(out, size, "arn:aws:ecs:%s:%s:", core->cfg->core.region, core->cfg->core.account);
    if (n < 0 || (size_t)n >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, size - (size_t)n, fmt, ap);
    va_end(ap);
}

const char *core_arn_name(const char *text, const char *resource, char *out, size_t size)
{
    if (strncmp(text, "arn:", 4) != 0) {
        /* a name too long to hold is no name of ours: never match on a truncated copy */
        return snprintf(out, size, "%s", text) < (int)size ? out : NULL;
    }
    /* arn:PARTITION:ecs:REGION:ACCOUNT:RESOURCE/... */
    const char *p = text;
    for (int colons = 0; colons < 5; colons++) {
        p = strchr(p, ':');
        if (!p)
            return NULL;
        p++;
    }
    size_t rlen = strlen(resource);
    if (strncmp(p, resource, rlen) != 0 || p[rlen] != '/')
        return NULL;
    const char *last = strrchr(p, '/');
    return snprintf(out, size, "%s", last + 1) < (int)size ? out : NULL;
}

void core_new_id(char out[CORE_ID_LEN + 1])
{
    unsigned char raw[CORE_ID_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        struct timespec ts; /* getrandom cannot fail for 16 bytes once the pool is ready */
        clock_gettime(CLOCK_REALTIME, &ts);
        memcpy(raw, &ts, sizeof raw < sizeof ts ? sizeof raw : sizeof ts);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

double core_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* ECS's timestamps have millisecond precision */
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}
