/* gantry-demo-app: the workload that tests, demos and benchmarks run as a task. One thread, one
 * libev loop, HTTP/1.1 with keep-alive and pipelining (common/http1.h parses every request).
 * main.c turns flags, environment and config into settings; server.c owns the sockets and the
 * connection state machine; respond.c decides what each request gets and writes the bytes;
 * probe.c is the other mode, a one-shot health-check client (--probe). */
#ifndef GANTRY_DEMO_DEMO_H
#define GANTRY_DEMO_DEMO_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/buf.h"
#include "common/http1.h"
#include "common/net.h"

enum {
    DEMO_TASK_ID_MAX = 128,
    DEMO_MAX_CONNS = 10000,
    DEMO_MAX_REQUEST_BODY = 1024 * 1024, /* larger: 413 */
};

/* The same bounds as the config file's demo section. */
#define DEMO_MAX_BODY_SIZE ((int64_t)64 * 1024 * 1024)
#define DEMO_MAX_LATENCY_MS ((int64_t)60000)
#define DEMO_MAX_CPU_MS ((int64_t)10000)

struct demo_settings {
    struct net_addr listen;
    int64_t body_size;
    int64_t latency_ms;
    int64_t cpu_ms;
    char task_id[DEMO_TASK_ID_MAX + 1];
};

enum demo_route {
    ROUTE_DEFAULT, /* a body of `size` bytes */
    ROUTE_HEALTH,
    ROUTE_HEALTH_FAIL,
    ROUTE_HEALTH_OK,
    ROUTE_ECHO,
    ROUTE_ERROR, /* status and message below */
};

/* What a request gets, decided from its head; nothing in it points into the connection buffer,
 * which moves as the body is read. */
struct demo_request {
    enum demo_route route;
    int status;
    char message[160];
    int64_t size, latency_ms, cpu_ms;
    bool no_body;            /* HEAD */
    bool keep_alive;         /* the client's wish */
    bool confirm_keep_alive; /* HTTP/1.0 keep-alive: say so in the response */
};

struct conn;

struct demo_server {
    struct ev_loop *loop;
    const struct demo_settings *settings;
    int listen_fd;
    ev_io accept_watcher;
    ev_timer accept_pause; /* out of file descriptors: retry accepting later */
    ev_timer grace;
    char served_by[NET_ADDR_TEXT_MAX];
    char fixed_headers[DEMO_TASK_ID_MAX + NET_ADDR_TEXT_MAX + 64]; /* X-Task-Id, X-Served-By */
    size_t fixed_headers_len;
    char date[64]; /* "Date: ...\r\n", rewritten once a second */
    size_t date_len;
    int64_t date_second;
    bool healthy;
    bool stopping;
    struct conn *conns; /* every open connection */
    struct conn *free_conns;
    size_t n_conns;
    struct http1_msg msg; /* the request being parsed: one at a time */
};

/* server.c */
int demo_server_start(struct demo_server *srv, struct ev_loop *loop,
                      const struct demo_settings *settings, char *err, size_t errlen);
/* Stops accepting, lets in-flight requests finish (a short grace), then breaks the loop. */
void demo_server_stop(struct demo_server *srv);
void demo_server_free(struct demo_server *srv);

/* respond.c */
void demo_plan(const struct demo_server *srv, const struct http1_msg *msg,
               struct demo_request *req);
/* Status line and headers; `close` adds Connection: close. -1 when out is full. */
int demo_put_head(struct demo_server *srv, struct buf *out, int status, int64_t content_length,
                  bool close, bool confirm_keep_alive);
/* A whole response whose body is `text`. */
int demo_put_text(struct demo_server *srv, struct buf *out, int status, const char *text,
                  bool no_body, bool close, bool confirm_keep_alive);
/* The next bytes of a default body ('x'... then '\n') of which `left` remain to be written, as at
 * most 2 iovecs pointing at static memory; returns how many it filled. */
int demo_pattern_iov(int64_t left, struct iovec *iov);
void demo_burn_cpu(int64_t ms);

/* probe.c: the --probe mode, a container health check with no shell or curl in the image. One
 * GET of http://HOST:PORT/PATH (path starts with '/'; host as HOST takes it, IPv6 bare or in
 * brackets); returns the exit status: 0 for a 2xx answer within DEMO_PROBE_TIMEOUT_MS of the
 * start, else 1 after one line on stderr saying why. */
#define DEMO_PROBE_TIMEOUT_MS 2000
int demo_probe(const char *host, int port, const char *path);

#endif
