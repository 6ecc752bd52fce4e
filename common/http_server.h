/* A small HTTP/1.1 server for the control plane's API on libev: keep-alive, Content-Length and
 * chunked request bodies up to a limit, one request at a time per connection (pipelined requests
 * wait their turn), answers built by a synchronous handler. Heads are parsed by common/http1.c;
 * malformed requests get their 4xx and the connection is closed. Bounded: connections, head and
 * body sizes, idle time. */
#ifndef GANTRY_COMMON_HTTP_SERVER_H
#define GANTRY_COMMON_HTTP_SERVER_H

#include <ev.h>
#include <stddef.h>

#include "common/http1.h"
#include "common/net.h"

struct http_request {
    const struct http1_msg *msg;
    const char *body;
    size_t body_len;
};

struct http_response {
    int status;
    const char *content_type;
    char extra_headers[256]; /* "Name: value\r\n" lines */
    char *body;              /* malloc'd; the server frees it */
    size_t body_len;
};

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

struct http_conn;

struct http_server {
    struct ev_loop *loop;
    int fd;
    ev_io accept_watcher;
    struct net_addr bound;
    size_t max_body;
    int max_conns;
    int n_conns;
    double idle_timeout;
    http_handler_fn handler;
    void *ctx;
    struct http_conn *conns;
};

int http_server_start(struct http_server *s, struct ev_loop *loop, const struct net_addr *addr,
                      size_t max_body, http_handler_fn handler, void *ctx, char *why,
                      size_t why_size);
void http_server_stop(struct http_server *s);

#endif
