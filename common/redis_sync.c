#include "common/redis_sync.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "common/clock.h"
#include "common/net.h"

const char *redis_url_text(const struct redis_url *url, char *out, size_t size)
{
    char addr[NET_ADDR_TEXT_MAX];
    if (!url->addr.len)
        snprintf(out, size, "redis://127.0.0.1:6379");
    else if (net_addr_family(&url->addr) == AF_UNIX)
        snprintf(out, size, "%s", net_addr_format(&url->addr, addr, sizeof addr));
    else if (url->db)
        snprintf(out, size, "redis://%s/%d", net_addr_format(&url->addr, addr, sizeof addr),
                 url->db);
    else
        snprintf(out, size, "redis://%s", net_addr_format(&url->addr, addr, sizeof addr));
    return out;
}

void redis_sync_init(struct redis_sync *r, const struct redis_url *url, int64_t timeout_ms)
{
    memset(r, 0, sizeof *r);
    r->url = *url;
    r->timeout_ms = timeout_ms;
    redis_url_text(url, r->url_text, sizeof r->url_text);
}

void redis_sync_close(struct redis_sync *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
}

enum { BACKOFF_MIN_MS = 250, BACKOFF_MAX_MS = 8000 };

/* The connection failed: drop it, and let calls fail fast for a while. */
static void fail_connection(struct redis_sync *r)
{
    redis_sync_close(r);
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    r->retry_at_ms = clock_mono_ms() + r->backoff_ms;
}

static redisContext *open_context(const struct redis_url *url, struct timeval tv)
{
    int family = net_addr_family(&url->addr);
    if (family == AF_UNIX)
        return redisConnectUnixWithTimeout(((const struct sockaddr_un *)&url->addr.ss)->sun_path,
                                           tv);
    char host[INET6_ADDRSTRLEN];
    const void *a = family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&url->addr.ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&url->addr.ss)->sin6_addr;
    inet_ntop(family, a, host, sizeof host);
    return redisConnectWithTimeout(host, net_addr_port(&url->addr), tv);
}

int redis_sync_connect(struct redis_sync *r)
{
    if (r->c)
        return 0;
    if (r->retry_at_ms && clock_mono_ms() < r->retry_at_ms)
        return -1; /* r->error still says why */
    struct timeval tv = {(time_t)(r->timeout_ms / 1000),
                         (suseconds_t)(r->timeout_ms % 1000) * 1000};
    r->c = open_context(&r->url, tv);
    if (!r->c || r->c->err) {
        snprintf(r->error, sizeof r->error, "cannot reach Redis at %s: %s", r->url_text,
                 r->c ? r->c->errstr : "out of memory");
        fail_connection(r);
        return -1;
    }
    redisSetTimeout(r->c, tv);
    if (r->url.db) {
        redisReply *reply = redisCommand(r->c, "SELECT %d", r->url.db);
        int ok = reply && reply->type != REDIS_REPLY_ERROR;
        if (!ok)
            snprintf(r->error, sizeof r->error, "cannot use database %d of Redis at %s: %s",
                     r->url.db, r->url_text, reply ? reply->str : r->c->errstr);
        freeReplyObject(reply);
        if (!ok) {
            fail_connection(r);
            return -1;
        }
    }
    r->backoff_ms = 0;
    r->retry_at_ms = 0;
    return 0;
}

/* The reply of what was appended; NULL with r->error set (the connection is dropped when the
 * failure was I/O, since its replies can no longer be matched to commands). */
static redisReply *take_reply(struct redis_sync *r)
{
    void *out = NULL;
    if (redisGetReply(r->c, &out) != REDIS_OK || !out) {
        snprintf(r->error, sizeof r->error, "Redis at %s did not answer: %s", r->url_text,
                 r->c->errstr[0] ? r->c->errstr : "connection closed");
        fail_connection(r);
        return NULL;
    }
    redisReply *reply = out;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(r->error, sizeof r->error, "Redis at %s refused a command: %s", r->url_text,
                 reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

redisReply *redis_sync_command(struct redis_sync *r, const char *fmt, ...)
{
    if (redis_sync_connect(r) < 0)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(r->c, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        snprintf(r->error, sizeof r->error, "cannot send to Redis: %s", r->c->errstr);
        fail_connection(r);
        return NULL;
    }
    return take_reply(r);
}

redisReply *redis_sync_argv(struct redis_sync *r, int argc, const char **argv,
                            const size_t *argvlen)
{
    if (redis_sync_connect(r) < 0)
        return NULL;
    if (redisAppendCommandArgv(r->c, argc, argv, argvlen) != REDIS_OK) {
        snprintf(r->error, sizeof r->error, "cannot send to Redis: %s", r->c->errstr);
        fail_connection(r);
        return NULL;
    }
    return take_reply(r);
}

void redis_cmd_set(struct redis_cmd *cmd, int argc, const char *const *args)
{
    cmd->argc = argc;
    for (int i = 0; i < argc && i < 6; i++) {
        cmd->argv[i] = args[i];
        cmd->argvlen[i] = strlen(args[i]);
    }
}

int redis_sync_multi(struct redis_sync *r, const struct redis_cmd *cmds, size_t n)
{
    if (redis_sync_connect(r) < 0)
        return -1;
    int ok = redisAppendCommand(r->c, "MULTI") == REDIS_OK;
    for (size_t i = 0; ok && i < n; i++)
        ok = redisAppendCommandArgv(r->c, cmds[i].argc, (const char **)cmds[i].argv,
                                    cmds[i].argvlen) == REDIS_OK;
    ok = ok && redisAppendCommand(r->c, "EXEC") == REDIS_OK;
    if (!ok) {
        snprintf(r->error, sizeof r->error, "cannot send to Redis: %s", r->c->errstr);
        fail_connection(r);
        return -1;
    }
    int failed = 0;
    /* MULTI and each QUEUED, then EXEC's array; every reply must be read to keep the stream in
     * step, even after a failure. */
    for (size_t i = 0; i < n + 2; i++) {
        redisReply *reply = take_reply(r);
        if (!reply) {
            if (!r->c)
                return -1;
            failed = 1;
            continue;
        }
        if (i == n + 1 && reply->type != REDIS_REPLY_ARRAY) {
            snprintf(r->error, sizeof r->error, "Redis at %s aborted a transaction", r->url_text);
            failed = 1;
        }
        freeReplyObject(reply);
    }
    return failed ? -1 : 0;
}
