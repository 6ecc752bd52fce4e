#include "lb/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

struct lb_access_log *lb_access_log_open(const char *path, bool json, size_t n_workers, char *err,
                                         size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? dup(STDOUT_FILENO)
                                    : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
        return NULL;
    }
    struct lb_access_log *log = calloc(1, sizeof *log);
    if (log)
        log->shards = calloc(n_workers, sizeof *log->shards);
    if (!log || !log->shards) {
        free(log);
        close(fd);
        snprintf(err, errlen, "access log: out of memory");
        return NULL;
    }
    log->fd = fd;
    log->json = json;
    log->n_shards = n_workers;
    for (size_t i = 0; i < n_workers; i++) {
        pthread_mutex_init(&log->shards[i].lock, NULL);
        buf_init(&log->shards[i].buf, LB_ACCESS_LOG_BUFFER);
    }
    return log;
}

/* JSON string contents: request bytes are attacker-controlled, so escape everything below 0x20,
 * quotes, backslashes and bytes above 0x7e. */
static void append_json_string(struct buf *b, const char *s, size_t n)
{
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            buf_printf(b, "\\u%04x", c);
        else
            buf_append(b, &s[i], 1);
    }
    buf_append(b, "\"", 1);
}

/* Common Log Format fields: quote-free and control-free, so one line stays one line. */
static void append_clf_text(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char safe = (c < 0x20 || c > 0x7e || c == '"') ? '?' : (char)c;
        buf_append(b, &safe, 1);
    }
}

static void format_json(struct buf *b, const struct lb_access_entry *e)
{
    char stamp[32];
    clock_format_iso8601(e->wall_ms, stamp, sizeof stamp);
    buf_printf(b, "{\"time\":\"%s\",\"client\":\"%s\",\"listener\":\"%s\",\"method\":", stamp,
               e->client, e->listener);
    append_json_string(b, e->method, e->method_len);
    buf_append_str(b, ",\"target\":");
    append_json_string(b, e->target, e->target_len);
    buf_append_str(b, ",\"host\":");
    append_json_string(b, e->host, e->host_len);
    buf_printf(b,
               ",\"status\":%d,\"bytes\":%lld,\"duration_ms\":%.3f,\"upstream\":\"%s\","
               "\"request_id\":",
               e->status, (long long)e->bytes_sent, (double)e->duration_us / 1000.0,
               e->target_addr);
    append_json_string(b, e->request_id, e->request_id_len);
    buf_append_str(b, "}\n");
}

static void format_common(struct buf *b, const struct lb_access_entry *e)
{
    time_t secs = (time_t)(e->wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char stamp[40];
    strftime(stamp, sizeof stamp, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    buf_printf(b, "%s - - [%s] \"", e->client, stamp);
    append_clf_text(b, e->method, e->method_len);
    buf_append(b, " ", 1);
    append_clf_text(b, e->target, e->target_len);
    buf_printf(b, " HTTP/1.%d\" %d %lld\n", e->http_minor, e->status, (long long)e->body_bytes);
}

void lb_access_log_add(struct lb_access_log *log, size_t worker, const struct lb_access_entry *e)
{
    char mem[4096];
    struct buf line;
    buf_init_fixed(&line, mem, sizeof mem);
    if (log->json)
        format_json(&line, e);
    else
        format_common(&line, e);
    if (buf_unread(&line) == 0 || mem[buf_unread(&line) - 1] != '\n')
        buf_append(&line, "\n", 1); /* a cut line still ends; never happens below 4 KiB */
    struct lb_access_log_shard *shard = &log->shards[worker];
    pthread_mutex_lock(&shard->lock);
    if (buf_append(&shard->buf, buf_head(&line), buf_unread(&line)) < 0)
        atomic_fetch_add_explicit(&shard->dropped, 1, memory_order_relaxed);
    pthread_mutex_unlock(&shard->lock);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a full disk loses log lines, never requests */
        p += w;
        n -= (size_t)w;
    }
}

void lb_access_log_flush(struct lb_access_log *log)
{
    struct buf out;
    buf_init(&out, (size_t)LB_ACCESS_LOG_BUFFER * log->n_shards);
    for (size_t i = 0; i < log->n_shards; i++) {
        struct lb_access_log_shard *shard = &log->shards[i];
        pthread_mutex_lock(&shard->lock);
        buf_append(&out, buf_head(&shard->buf), buf_unread(&shard->buf));
        buf_reset(&shard->buf);
        pthread_mutex_unlock(&shard->lock);
    }
    write_all(log->fd, buf_head(&out), buf_unread(&out));
    buf_free(&out);
}

static void on_flush_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    lb_access_log_flush(w->data);
}

void lb_access_log_start(struct lb_access_log *log, struct ev_loop *main_loop)
{
    ev_timer_init(&log->flush_timer, on_flush_timer, 0.1, 0.1);
    log->flush_timer.data = log;
    ev_timer_start(main_loop, &log->flush_timer);
}

void lb_access_log_close(struct lb_access_log *log, struct ev_loop *main_loop)
{
    if (!log)
        return;
    ev_timer_stop(main_loop, &log->flush_timer);
    lb_access_log_flush(log);
    for (size_t i = 0; i < log->n_shards; i++) {
        pthread_mutex_destroy(&log->shards[i].lock);
        buf_free(&log->shards[i].buf);
    }
    free(log->shards);
    close(log->fd);
    free(log);
}
