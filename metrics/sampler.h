/* Sampling a task's CPU and memory on this machine, pass after pass.
 *
 * A DOCKER task is measured through dockerd's stats API (metrics/docker_stats.h; the socket of
 * core.docker_socket): each running container's latest stats document, the task's CPU the sum of
 * its containers' (each a delta of its cumulative counter between the documents two passes took,
 * timed by dockerd's reading times), its memory the sum of theirs. A container without a fresh
 * document leaves its task without a datapoint that pass. dockerd is not asked anything in a
 * pass without DOCKER tasks.
 *
 * A PROCESS task is found through its container processes as gantry-core recorded them (pid and
 * start time, verified before anything is read: a reused pid is never taken for the task), then:
 * - in its cgroup (metrics/cgroup.h) when it has one: the cgroup's cumulative CPU counter where
 *   there is one (v2 cpu.stat, v1 cpuacct.usage), else the CPU time of the processes listed in
 *   cgroup.procs; its memory counters;
 * - else, through the process group each container leads: the CPU time and resident memory of
 *   the processes of those groups (one scan of /proc per pass).
 * CPU utilisation is the CPU time used between two passes over the (monotonic) time between
 * them: a task's first pass, or a pass after the way it is measured changed or its counter went
 * backwards (a process outside the counter exited), gives no CPU value, never a made-up one. */
#ifndef GANTRY_METRICS_SAMPLER_H
#define GANTRY_METRICS_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/cgroup.h"
#include "common/procfs.h"
#include "metrics/docker_stats.h"
#include "metrics/task_list.h"

enum usage_source {
    USAGE_NONE,
    USAGE_CGROUP_COUNTER, /* cpu.stat usage_usec, cpuacct.usage */
    USAGE_CGROUP_PROCS,   /* the processes of cgroup.procs */
    USAGE_PROCESS_GROUPS, /* the containers' process groups */
    USAGE_DOCKER_STATS,   /* dockerd's stats documents of a DOCKER task's containers */
};

struct task_usage {
    bool sampled; /* false: nothing of the task could be read (it is gone): no datapoint at all */
    enum usage_source source;
    bool has_cpu;
    double cpu_cores; /* CPU used over the last interval, in cores */
    bool has_memory;
    uint64_t memory_bytes;
};

/* What is kept of a task between passes: its CPU counter, when it was read and how. */
struct sampler_mark {
    char cluster[ECS_NAME_MAX + 1];
    char id[ECS_TASK_ID_LEN + 1];
    uint64_t cpu_ns;
    int64_t at_ns;
    enum usage_source source;
};

struct sampler {
    struct cg_mounts mounts;
    struct proc_groups groups;
    long clk_tck;
    struct sampler_mark *marks, *next; /* sorted by cluster and id; next is being built */
    size_t n_marks, n_next, cap;
    char *docker_socket;         /* where dockerd is */
    struct docker_stats *docker; /* open while there are DOCKER tasks */
};

void sampler_init(struct sampler *s);
void sampler_free(struct sampler *s);
/* Reads the cgroup mounts again (at start and on reload). */
void sampler_load_mounts(struct sampler *s);
/* dockerd's unix socket (at start and on reload: streams to another one are closed). -1 when
 * memory runs out (the previous one stays). */
int sampler_set_docker_socket(struct sampler *s, const char *path);
/* The stats streams open to dockerd. */
size_t sampler_docker_streams(const struct sampler *s);

/* Samples every task of the list: usage[i] describes tasks->items[i]. Tasks no longer listed are
 * forgotten. 0, or -1 when memory runs out (nothing is kept of this pass then). */
int sampler_run(struct sampler *s, const struct task_list *tasks, struct task_usage *usage);

#endif
