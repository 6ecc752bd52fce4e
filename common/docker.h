/* A small Docker Engine API client (API v1.41, Docker 20.10 and later) over dockerd's unix socket,
 * with libcurl. gantry-core runs DOCKER tasks through it. (gantry-metrics streams container stats
 * without blocking on its own, metrics/docker_stats.h: a blocking stats call waits for dockerd's
 * collector, up to a second.)
 *
 * Calls are blocking, and their callers run on an event loop, so every call is bounded: 1 s to
 * connect, 5 s in all (DOCKER_TIMEOUT_MS), and answers are read into bounded buffers (an answer
 * past its limit is an error, never an unbounded allocation). A daemon that does not answer costs
 * one timeout, then calls fail at once with the same error for a backoff (250 ms doubling up to
 * 8 s), so a hung dockerd stalls the loop once per backoff, not once per call. The client logs
 * when the daemon stops answering and when it answers again, once each, so its callers need not.
 *
 * Every call returns DOCKER_OK (0) or a negative enum docker_result; docker_error() is then one
 * line saying what failed: "cannot reach dockerd at /var/run/docker.sock: connect: No such file
 * or directory", or the request and dockerd's own message ("POST /containers/create: 404 No such
 * image: demo:1"). One client is used by one thread. */
#ifndef GANTRY_COMMON_DOCKER_H
#define GANTRY_COMMON_DOCKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum docker_result {
    DOCKER_OK = 0,
    DOCKER_UNREACHABLE = -1, /* no answer: no socket, refused, timed out (or backing off) */
    DOCKER_NOT_FOUND = -2,   /* 404: no such container, or no such image on create */
    DOCKER_CONFLICT = -3,    /* 409: a name in use, a container not running (kill), ... */
    DOCKER_FAILED = -4,      /* any other error status, or an answer that is not the API's */
};

enum {
    DOCKER_ID_MAX = 72, /* a container id (64 hex digits) and its NUL, with room to spare */
    DOCKER_CONNECT_TIMEOUT_MS = 1000,
    DOCKER_TIMEOUT_MS = 5000,
    DOCKER_MAX_ANSWER = 8 << 20, /* a JSON answer (a listing of a few thousand containers) */
};

struct docker;

/* A client for the daemon at socket_path (nothing is connected yet). NULL when out of memory. */
struct docker *docker_open(const char *socket_path);
void docker_close(struct docker *d);
const char *docker_socket_path(const struct docker *d);
/* The last failed call's error text ("" before any). */
const char *docker_error(const struct docker *d);
/* Whether the last call got an answer from the daemon (any status). */
bool docker_reachable(const struct docker *d);

/* Any call: method and path (after the version prefix, with its query string already escaped),
 * an optional JSON body; *out (when out is not NULL) gets the JSON answer of a 2xx status, or
 * NULL when it had no body. Non-2xx statuses map to the results above. */
int docker_request(struct docker *d, const char *method, const char *path, const json_t *body,
                   json_t **out);

int docker_ping(struct docker *d);
/* POST /containers/create?name=NAME (name may be NULL) with config as the API's body; the new
 * container's id in id. DOCKER_NOT_FOUND: the image is not in dockerd (it is never pulled). */
int docker_create(struct docker *d, const char *name, const json_t *config, char id[DOCKER_ID_MAX]);
/* Starting a container that already runs is not an error. */
int docker_start(struct docker *d, const char *id);
/* GET /containers/ID/json into *out (a new reference). */
int docker_inspect(struct docker *d, const char *id, json_t **out);
/* Sends signal number sig; DOCKER_CONFLICT when the container is not running. Never waits. */
int docker_kill(struct docker *d, const char *id, int sig);
/* Removes a container (force: a running one is killed first) with its anonymous volumes. */
int docker_remove(struct docker *d, const char *id, bool force);
/* Every container (running or not) with the label: "KEY" or "KEY=VALUE"; *out is the API's
 * array of summaries (Id, Names, State, Status, Labels...). */
int docker_list(struct docker *d, const char *label, json_t **out);
/* The last tail_lines lines of the container's stdout and stderr, interleaved as written, at
 * most the last max_bytes of them, into *out (malloc'd, NUL-terminated, *len bytes). tty: the
 * container has a terminal (its stream is raw, not multiplexed). */
int docker_logs(struct docker *d, const char *id, bool tty, int tail_lines, size_t max_bytes,
                char **out, size_t *len);

#endif
