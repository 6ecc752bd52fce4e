/* The CPU and memory counters of DOCKER tasks' containers, from dockerd's stats API (v1.41) on its
 * unix socket, for gantry-metrics' sampler (docs/metrics.md).
 *
 * Each container asked for gets one streaming request, GET /containers/ID/stats?stream=true, held
 * open while it is asked for in every pass: dockerd's collector reads every subscribed container
 * once a second and sends each stream one JSON document per round. The one-shot form
 * (stream=false&one-shot=true) is no cheaper: Docker 20.10 answers it at the collector's next
 * round too, up to a second later, so one blocking call per container per pass would take N
 * seconds for N containers.
 *
 * Nothing here blocks: the streams are libcurl easy handles in one multi handle, advanced without
 * waiting at the start of a pass (docker_stats_begin) and after it asked for new containers
 * (docker_stats_end). A dockerd that is down, slow or hung costs a pass nothing: its containers
 * just have no fresh document. A stream that fails (no socket, refused, an error status, 10 s
 * without a byte, a document over 1 MiB) is opened again after a backoff (250 ms doubling up to
 * 8 s, reset by a document); dockerd not answering is logged once, and its answering again once.
 * A stream not asked for in a pass is closed: with no DOCKER task, nothing talks to dockerd.
 *
 * One instance is used by one thread. */
#ifndef GANTRY_METRICS_DOCKER_STATS_H
#define GANTRY_METRICS_DOCKER_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    DOCKER_STATS_ID_MIN = 12, /* a short container id, as the API takes them */
    DOCKER_STATS_ID_MAX = 64, /* a full one: hex digits */
};

/* One document: what dockerd read of a running container. */
struct docker_frame {
    int64_t read_ns;   /* when dockerd read the counters: its wall clock, Unix ns ("read") */
    uint64_t cpu_ns;   /* cpu_stats.cpu_usage.total_usage: CPU time since the container started */
    bool has_memory;   /* memory_stats.usage was there (not on a daemon without memory cgroup) */
    uint64_t memory_b; /* memory_stats.usage minus the inactive page cache, as `docker stats` */
};

enum docker_frame_result {
    DOCKER_FRAME_OK,
    DOCKER_FRAME_NOT_RUNNING, /* dockerd's empty document: "read" is Go's zero time */
    DOCKER_FRAME_DAMAGED,     /* not JSON, or fields missing, of the wrong type, out of range */
};

/* One stats document. Memory in use is computed as the docker CLI does: usage minus
 * stats.total_inactive_file (cgroup v1) when that is smaller, else minus stats.inactive_file
 * (v2) when smaller, else usage. Pure. */
enum docker_frame_result docker_frame_parse(const char *text, size_t len, struct docker_frame *out);

/* An RFC 3339 time as dockerd writes it ("2026-11-21T13:26:05.969515704Z", a fraction of 0 to 9
 * digits, "Z" or an offset "+01:00") in Unix ns: 0, or 1 for a time before 1970 (Go's zero time
 * "0001-01-01T00:00:00Z": nothing was read), or -1 when it does not read. Pure. */
int docker_time_parse(const char *text, int64_t *unix_ns);

/* Whether id can name a container here: 12 to 64 lowercase hex digits. */
bool docker_stats_id_valid(const char *id);

/* What docker_stats_take() gives for a container: its latest document, and the one the previous
 * take gave (has_prev false on the first, or after the container had no fresh document). */
struct container_sample {
    struct docker_frame now;
    bool has_prev;
    struct docker_frame prev;
};

struct docker_stats;

/* Streams to the daemon at socket_path (nothing is connected yet). NULL when out of memory. */
struct docker_stats *docker_stats_open(const char *socket_path);
/* Closes every stream. */
void docker_stats_close(struct docker_stats *ds);
const char *docker_stats_socket(const struct docker_stats *ds);
/* The streams open (or waiting to be opened again). */
size_t docker_stats_streams(const struct docker_stats *ds);

/* A pass: begin, a take for every container the pass samples, end. */
void docker_stats_begin(struct docker_stats *ds);
/* The latest document of container id (docker_stats_id_valid), when it is fresh: it came within
 * the last 3 s. false when there is none (a stream just opened, dockerd not answering, the
 * container not running or gone, memory out); its stream is then opened when it is not. */
bool docker_stats_take(struct docker_stats *ds, const char *id, struct container_sample *out);
/* Closes the streams of containers this pass did not take, sends the new ones' requests. */
void docker_stats_end(struct docker_stats *ds);

#endif
