#include "cli/redis_managed.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PING_TIMEOUT_MS = 200 };

/* mkdir -p: each missing component of path, with mode. */
static int make_dirs(const char *path, mode_t mode, char *err, size_t errlen)
{
    char partial[PATH_MAX];
    if (snprintf(partial, sizeof partial, "%s", path) >= (int)sizeof partial) {
        snprintf(err, errlen, "directory '%s': path too long", path);
        return -1;
    }
    for (char *p = partial + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(partial, mode) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory '%s': %s", partial, strerror(errno));
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

static int lock_run_dir(struct redis_managed *r, char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/gantry.lock", r->run_dir);
    r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(r->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen, "another `gantry up` (pid %s) is running with run_dir '%s'",
                 *pid ? pid : "unknown", r->run_dir);
        return -1;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (ftruncate(r->lock_fd, 0) < 0 || pwrite(r->lock_fd, text, (size_t)len, 0) != len) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int redis_managed_prepare(struct redis_managed *r, const char *run_dir, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->lock_fd = -1;
    if (make_dirs(run_dir, 0755, err, errlen) < 0)
        return -1;
    if (!realpath(run_dir, r->run_dir)) {
        snprintf(err, errlen, "run_dir '%s': %s", run_dir, strerror(errno));
        return -1;
    }
    if (snprintf(r->socket_path, sizeof r->socket_path, "%s/redis.sock", r->run_dir) >=
        (int)sizeof r->socket_path) {
        snprintf(err, errlen,
                 "run_dir '%s' is too long a path for a unix socket (%zu bytes at most): set "
                 "up.run_dir to a shorter one",
                 r->run_dir, sizeof r->socket_path - sizeof "/redis.sock");
        return -1;
    }
    snprintf(r->url, sizeof r->url, "unix:%s", r->socket_path);
    /* Redis's data is the cluster's state: only its owner reads it. */
    if (snprintf(r->data_dir, sizeof r->data_dir, "%s/redis", r->run_dir) >=
            (int)sizeof r->data_dir ||
        make_dirs(r->data_dir, 0700, err, errlen) < 0 || lock_run_dir(r, err, errlen) < 0)
        return -1;
    char addr[16];
    if (redis_managed_ping(r, addr, sizeof addr)) {
        snprintf(err, errlen,
                 "a Redis already answers on %s, and no running `gantry up` manages it (one left "
                 "by a killed `gantry up` may still be saving its data): stop it, or set "
                 "redis.url to use it",
                 r->url);
        return -1;
    }
    return 0;
}

void redis_managed_spec(struct redis_managed *r, const char *program, struct child_spec *spec)
{
    /* On the command line rather than in a generated file: nothing to clean up, and `ps` shows
     * exactly how it runs. */
    const char *args[] = {
        program,        "--port",           "0",   "--bind", "127.0.0.1", "--unixsocket",
        r->socket_path, "--unixsocketperm", "700", "--dir",  r->data_dir, "--appendonly",
        "yes",          "--daemonize",      "no",
    };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        child_spec_arg(spec, args[i]);
    spec->probe = redis_managed_ping;
    spec->probe_arg = r;
    spec->hint = "install it: make deps, or apt-get install redis-server";
}

bool redis_managed_ping(void *arg, char *addr, size_t addrlen)
{
    struct redis_managed *r = arg;
    struct timeval tv = {0, PING_TIMEOUT_MS * 1000};
    /* Blocking, but on a local socket: connecting fails or succeeds at once, and a live server
     * answers PING in microseconds. The timeout bounds a server that is stuck. */
    redisContext *ctx = redisConnectUnixWithTimeout(r->socket_path, tv);
    if (!ctx)
        return false;
    bool pong = false;
    if (!ctx->err && redisSetTimeout(ctx, tv) == REDIS_OK) {
        redisReply *reply = redisCommand(ctx, "PING");
        pong = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
        freeReplyObject(reply);
    }
    redisFree(ctx);
    if (pong)
        snprintf(addr, addrlen, "%s", r->url);
    return pong;
}

void redis_managed_release(struct redis_managed *r)
{
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    r->lock_fd = -1;
}

void redis_managed_default_url(const char *run_dir, struct redis_url *out)
{
    char path[PATH_MAX], url[PATH_MAX + 8], why[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/redis.sock", run_dir);
    if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        snprintf(url, sizeof url, "unix:%s", path) < (int)sizeof url &&
        value_parse_redis_url(url, out, why, sizeof why) == 0)
        return;
    value_parse_redis_url("redis://127.0.0.1:6379", out, why, sizeof why);
}
