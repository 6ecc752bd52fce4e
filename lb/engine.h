/* Internals of a worker thread: client connections, target connections and their pools.
 *
 * A client connection reads a request head into a pooled buffer, routes it, then either answers
 * itself (fixed-response, redirect, errors) or forwards it to a target over a pooled keep-alive
 * connection. Bodies stream in both directions with back-pressure: a side is read only when what
 * was staged from it has been written to the other, so memory per connection stays bounded.
 *
 * A request whose head and body are all in the client's buffer stays there until the target's
 * response head arrives: if a reused pooled connection turns out to be closed, the request is
 * sent again on a new connection and the client never sees the target's close. */
#ifndef GANTRY_LB_ENGINE_H
#define GANTRY_LB_ENGINE_H

#include <netinet/in.h>

#include "lb/body.h"
#include "lb/io.h"
#include "lb/lb.h"

enum {
    LB_POOL_BUCKETS = 256,
    LB_OUT_LIMIT = 64 * 1024,
    LB_SMALL_BLOCK = 1024, /* a request head or a response head fits: no malloc per request */
    LB_MAX_TRIED = 12,     /* lb.retries is at most 10 */
};

struct lb_upstream;
struct lb_client;

/* A worker's connections to one target address; outlives generations. */
struct lb_pool {
    struct lb_pool *next;
    struct net_addr addr;
    struct lb_upstream *idle; /* most recently used first */
    size_t n_idle;
    size_t n_open; /* idle and busy */
    size_t refs;   /* generations mapping a target to it */
    bool releasing;
};

/* A worker's view of one generation. */
struct lb_wgen {
    struct lb_wgen *next;
    struct lb_gen *gen;
    size_t users; /* clients in a request routed by it, +1 while it is the worker's current */
    struct lb_pickers *pickers;
    struct lb_pool ***pools; /* [group][target] */
    ev_io *accepts;          /* [listener] */
    bool *usable;            /* scratch for lb_pick: the largest group's size */
};

struct lb_worker {
    struct lb_ctx *ctx;
    size_t id;
    pthread_t thread;
    bool started;
    struct ev_loop *loop;
    ev_async wake;
    struct lb_wgen *current;
    struct lb_wgen *gens;    /* current and older ones still in use */
    atomic_uint applied_gen; /* the id of current's generation, for the main thread */
    bool stopping;
    ev_timer stop_timer;
    struct lb_client *clients; /* every open client connection */
    size_t n_clients;
    struct lb_pool *pools[LB_POOL_BUCKETS];
    char *scratch;    /* buf_size bytes: what clients send is read here first */
    void *free_bufs;  /* pooled I/O buffers for target connections, linked through their first
                         bytes */
    void *free_small; /* pooled LB_SMALL_BLOCK blocks, linked the same way */
    size_t n_free_small;
    size_t n_free_bufs;
    size_t buf_size;
    uint64_t rng;
    int64_t date_second;
    char date[40];        /* "Date: Sat, 21 Nov 2026 08:10:25 GMT\r\n" */
    struct http1_msg msg; /* parse scratch: one request at a time per worker */
};

enum lb_client_state {
    CLIENT_HEAD,    /* reading a request head, or idle between requests */
    CLIENT_RESPOND, /* writing a response the balancer made */
    CLIENT_FORWARD, /* a target is handling the request */
    CLIENT_TUNNEL,  /* after a 101: bytes both ways */
};

struct lb_client {
    struct lb_client *prev, *next;
    struct lb_worker *w;
    struct lb_wgen *wg; /* the generation of the listener and of the request in flight */
    const struct lb_listener *listener;
    struct lb_stat_block *stats;
    struct lb_endpoint ep;
    ev_timer timer;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
    char peer_text[INET6_ADDRSTRLEN];
    struct buf in; /* growable, at most the worker's buf_size */
    size_t parsed; /* bytes of `in` the parser has seen */
    enum lb_client_state state;
    bool keep_alive; /* after this response */
    bool http10;
    bool staged;     /* handed to a target connection (stage_request) */
    bool replayable; /* the whole request is still in `in` */
    bool expect_continue;
    bool upgrade;
    bool served_one; /* a request was answered on this connection */
    enum http1_method method;
    int status;
    int64_t started_ns;
    int64_t bytes_out;
    int64_t head_out;   /* bytes of response heads among bytes_out (the access log wants bodies) */
    size_t request_len; /* head + body, while replayable */
    struct lb_body req_body;
    struct lb_upstream *up;
    struct lb_target_group *group;
    const struct lb_target *target;
    unsigned retries;             /* other targets tried after the first failed */
    bool replayed;                /* sent again on a new connection to the same target */
    bool may_have_seen;           /* a target may have read it: no other gets it unless allowed */
    uint32_t tried[LB_MAX_TRIED]; /* target indices that failed this request */
    unsigned n_tried;
    char request_id[40];
    char *log_request; /* "METHOD target host" copy, only when the access log is on */
};

enum lb_upstream_state {
    UP_CONNECTING,
    UP_SENDING, /* request head and body */
    UP_WAITING, /* for the response head */
    UP_BODY,    /* response body */
    UP_IDLE,    /* in the pool */
    UP_TUNNEL,
};

struct lb_upstream {
    struct lb_upstream *next_idle;
    struct lb_worker *w;
    struct lb_pool *pool;
    struct lb_client *client;
    struct lb_endpoint ep;
    ev_timer timer;
    struct buf in;
    size_t parsed;
    enum lb_upstream_state state;
    bool reused;
    bool keep_alive;
    bool got_bytes;
    struct lb_body resp_body;
    int64_t sent_ns;
};

/* worker.c */
void *lb_buf_get(struct lb_worker *w);
void lb_buf_put(struct lb_worker *w, void *mem);
/* The largest request head a client buffer must hold under these settings. */
size_t lb_client_buffer_size(const struct lb_settings *s);
/* Reads from a client into c->in through the worker's scratch buffer, so that a connection holds
 * only as much memory as it has unread bytes (a growable buffer, at most buf_size). Returns bytes
 * read, 0 at EOF, -1 with EAGAIN, -2 on an error, -3 when c->in is full. */
ssize_t lb_client_read(struct lb_client *c);
/* Gives an empty growable buffer a pooled small block, so that a request's head and its answer
 * cost no malloc; growing past it reallocates as usual. */
void lb_sbuf_prepare(struct lb_worker *w, struct buf *b);
/* An empty growable buffer gives its memory back: a small block to the pool, anything grown to the
 * system. An idle connection holds none. */
void lb_sbuf_release(struct lb_worker *w, struct buf *b);
/* Gives `b` pooled memory if it has none; -1 when out of memory. */
int lb_buf_attach(struct lb_worker *w, struct buf *b);
/* Returns an empty buffer's memory to the pool. */
void lb_buf_detach(struct lb_worker *w, struct buf *b);
struct lb_pool *lb_pool_for(struct lb_worker *w, const struct net_addr *addr);
void lb_pool_unref(struct lb_worker *w, struct lb_pool *pool);
/* One of the pool's connections closed: a pool no generation maps goes with its last one. */
void lb_pool_closed_one(struct lb_worker *w, struct lb_pool *pool);
void lb_wgen_unuse(struct lb_worker *w, struct lb_wgen *wg);
uint64_t lb_worker_random(struct lb_worker *w);
/* A client connection closed: a stopping worker may be done. */
void lb_worker_client_gone(struct lb_worker *w);
const char *lb_worker_date(struct lb_worker *w);

/* client.c */
void lb_client_accept(struct lb_worker *w, struct lb_wgen *wg, size_t listener, int fd,
                      const struct sockaddr *peer);
void lb_client_close(struct lb_client *c);
/* The worker is stopping: idle connections close now, busy ones after their response. */
void lb_client_stop(struct lb_client *c);
/* A response (made or forwarded) has been written in full. */
void lb_client_request_done(struct lb_client *c);
/* Answers with a generated error or message; closes afterwards when close is set. */
void lb_client_respond(struct lb_client *c, int status, const char *content_type, const char *body,
                       size_t body_len, const char *location, bool close);
void lb_client_count_error(struct lb_client *c, enum lb_counter kind);
/* Drops a request the balancer answers itself from the input: its body too when it is all there,
 * else the connection will close after the answer (the rest of the body is still coming). */
void lb_client_skip_request(struct lb_client *c, const struct http1_msg *m);
void lb_client_flush(struct lb_client *c);
void lb_client_arm_timer(struct lb_client *c, int64_t ms);

/* proxy.c */
/* The request's target is done with it (answered, failed or closed). */
void lb_client_release_target(struct lb_client *c);
void lb_proxy_start(struct lb_client *c, struct lb_target_group *group);
/* The client side has bytes to move or room to write: continue the exchange. */
void lb_proxy_client_readable(struct lb_client *c);
void lb_proxy_client_flushed(struct lb_client *c);
/* Abandons the target side (the client went away or the worker stops). */
void lb_proxy_abort(struct lb_client *c);
void lb_upstream_close(struct lb_upstream *u);

#endif
