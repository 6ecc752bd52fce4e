/* A synchronous Redis connection for control-plane code (gantry-core's state, the CLI): every
 * call has a timeout, a lost connection is reopened by the next call, and failures come back as
 * text for the caller to log or print. Not for the proxy's hot path (gantry-lb is asynchronous). */
#ifndef GANTRY_COMMON_REDIS_SYNC_H
#define GANTRY_COMMON_REDIS_SYNC_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "config/values.h"

struct redis_sync {
    redisContext *c;
    struct redis_url url;
    int64_t timeout_ms;
    char url_text[160];
    char error[512]; /* why the last call failed */
    /* After a failure, calls fail at once until retry_at_ms (monotonic), the wait doubling from
     * 250 ms to 8 s: an event loop never spends more than one timeout per wait on a Redis that
     * is down or hung. */
    int64_t retry_at_ms;
    int64_t backoff_ms;
};

/* How messages name a Redis: "redis://127.0.0.1:6379" (no /0), "unix:/path"; the default when
 * none is configured. */
const char *redis_url_text(const struct redis_url *url, char *out, size_t size);

void redis_sync_init(struct redis_sync *r, const struct redis_url *url, int64_t timeout_ms);
/* Connects if not connected. Returns 0 or -1 (r->error says why). */
int redis_sync_connect(struct redis_sync *r);
void redis_sync_close(struct redis_sync *r);

/* One command (hiredis format); the reply, never an error reply, or NULL with r->error set. The
 * connection is dropped on I/O errors so the next call reconnects. */
redisReply *redis_sync_command(struct redis_sync *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
redisReply *redis_sync_argv(struct redis_sync *r, int argc, const char **argv,
                            const size_t *argvlen);

/* A transaction: MULTI, the n queued commands (argv form), EXEC, sent in one round trip. Returns
 * 0 when EXEC ran every command, or -1 with r->error set. */
struct redis_cmd {
    int argc;
    const char *argv[6];
    size_t argvlen[6];
};
int redis_sync_multi(struct redis_sync *r, const struct redis_cmd *cmds, size_t n);
/* Fills a command from NUL-terminated strings (at most 6). */
void redis_cmd_set(struct redis_cmd *cmd, int argc, const char *const *args);

#endif
