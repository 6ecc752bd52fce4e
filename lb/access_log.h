/* The access log: one line per request, Common Log Format or JSON lines. Each worker appends to
 * its own buffer (no lock on the request path); the main thread writes the buffers out once a
 * second and when a buffer passes a threshold, so no request waits on the disk. When the writer
 * cannot keep up, lines are dropped and counted rather than blocking or growing without bound. */
#ifndef GANTRY_LB_ACCESS_LOG_H
#define GANTRY_LB_ACCESS_LOG_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

enum { LB_ACCESS_LOG_BUFFER = 4 * 1024 * 1024 };

struct lb_access_entry {
    const char *client; /* address text */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    const char *host;
    size_t host_len;
    const char *listener;
    const char *target_addr; /* "" when none */
    int status;
    int64_t bytes_sent; /* head and body */
    int64_t body_bytes;
    int http_minor;
    int64_t duration_us;
    const char *request_id;
    size_t request_id_len;
    int64_t wall_ms;
};

struct lb_access_log_shard {
    pthread_mutex_t lock; /* between one worker and the writer, held for a memcpy */
    struct buf buf;
    atomic_long dropped;
};

struct lb_access_log {
    int fd;
    bool json;
    size_t n_shards;
    struct lb_access_log_shard *shards;
    ev_timer flush_timer;
};

struct lb_access_log *lb_access_log_open(const char *path, bool json, size_t n_workers, char *err,
                                         size_t errlen);
void lb_access_log_start(struct lb_access_log *log, struct ev_loop *main_loop);
void lb_access_log_add(struct lb_access_log *log, size_t worker, const struct lb_access_entry *e);
void lb_access_log_flush(struct lb_access_log *log);
void lb_access_log_close(struct lb_access_log *log, struct ev_loop *main_loop);

#endif
