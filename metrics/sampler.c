#include "metrics/sampler.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

void sampler_init(struct sampler *s)
{
    memset(s, 0, sizeof *s);
    s->clk_tck = sysconf(_SC_CLK_TCK);
    sampler_load_mounts(s);
}

void sampler_free(struct sampler *s)
{
    procfs_groups_free(&s->groups);
    free(s->marks);
    free(s->next);
    docker_stats_close(s->docker);
    free(s->docker_socket);
    memset(s, 0, sizeof *s);
}

int sampler_set_docker_socket(struct sampler *s, const char *path)
{
    if (s->docker_socket && strcmp(s->docker_socket, path) == 0)
        return 0;
    char *copy = strdup(path);
    if (!copy)
        return -1;
    if (s->docker_socket)
        log_info("DOCKER tasks are now sampled through dockerd at %s", copy);
    free(s->docker_socket);
    s->docker_socket = copy;
    docker_stats_close(s->docker); /* streams to the old socket; the next pass opens new ones */
    s->docker = NULL;
    return 0;
}

size_t sampler_docker_streams(const struct sampler *s)
{
    return s->docker ? docker_stats_streams(s->docker) : 0;
}

void sampler_load_mounts(struct sampler *s)
{
    if (cg_mounts_load(&s->mounts) < 0)
        log_warn("cannot read /proc/self/mountinfo: tasks are measured through their processes");
}

/* One task's counters as read now. */
struct reading {
    enum usage_source source;
    uint64_t cpu_ns;
    bool has_memory;
    uint64_t memory_bytes;
};

static int read_cgroup(struct sampler *s, const struct task_cg *cg, struct reading *out)
{
    uint64_t ticks = 0, rss = 0;
    bool have_procs = false;
    if (cg_cpu_usage_ns(cg, &out->cpu_ns) == 0) {
        out->source = USAGE_CGROUP_COUNTER;
    } else if (cg_procs_sum(cg, &ticks, &rss) == 0) {
        have_procs = true;
        out->cpu_ns = procfs_ticks_to_ns(ticks, s->clk_tck);
        out->source = USAGE_CGROUP_PROCS;
    } else {
        return -1; /* the cgroup is gone: the task has just stopped */
    }
    out->has_memory = cg_memory_bytes(cg, &out->memory_bytes) == 0;
    if (!out->has_memory && (have_procs || cg_procs_sum(cg, &ticks, &rss) == 0)) {
        out->memory_bytes = rss; /* v1 without the memory hierarchy */
        out->has_memory = true;
    }
    return 0;
}

/* One container without a cgroup: the processes of the group it was started to lead. While the
 * container process lives (verified) its pid cannot name another group; once it has exited it
 * could, so what is left of its group is not counted. A container that moved itself to another
 * group still counts, alone. */
static bool read_group(struct sampler *s, const struct ecs_process *p, uint64_t *ticks,
                       uint64_t *rss)
{
    struct proc_stat st;
    uint64_t c = 0, r = 0;
    if (!procfs_is_container(p->pid, p->start_ticks, &st))
        return false;
    bool found = procfs_groups_sum(&s->groups, p->pid, &c, &r);
    if (st.pgrp != p->pid) {
        c += st.cpu_ticks;
        r += st.rss_bytes;
        found = true;
    }
    *ticks += c;
    *rss += r;
    return found;
}

/* Without a cgroup: the process groups of the containers still running. */
static int read_groups(struct sampler *s, const struct ecs_task *t, struct reading *out)
{
    if (procfs_groups_build(&s->groups) < 0)
        return -1;
    uint64_t ticks = 0, rss = 0;
    int found = 0;
    for (int i = 0; i < t->n_procs; i++)
        found += read_group(s, &t->procs[i], &ticks, &rss);
    if (!found)
        return -1;
    *out = (struct reading){USAGE_PROCESS_GROUPS, procfs_ticks_to_ns(ticks, s->clk_tck), true, rss};
    return 0;
}

static int read_task(struct sampler *s, const struct ecs_task *t, struct reading *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < t->n_procs; i++) {
        /* The first container still running (verified) tells where the task's cgroup is. */
        if (!procfs_is_container(t->procs[i].pid, t->procs[i].start_ticks, NULL))
            continue;
        struct task_cg cg;
        if (cg_find_task(&s->mounts, t->procs[i].pid, t->id, &cg) == 0)
            return read_cgroup(s, &cg, out);
        return read_groups(s, t, out);
    }
    return -1;
}

static int mark_cmp(const void *a, const void *b)
{
    const struct sampler_mark *x = a, *y = b;
    int c = strcmp(x->cluster, y->cluster);
    return c ? c : strcmp(x->id, y->id);
}

static const struct sampler_mark *find_mark(const struct sampler *s, const struct ecs_task *t)
{
    struct sampler_mark key;
    memcpy(key.cluster, t->cluster, sizeof key.cluster);
    memcpy(key.id, t->id, sizeof key.id);
    return s->n_marks ? bsearch(&key, s->marks, s->n_marks, sizeof *s->marks, mark_cmp) : NULL;
}

static int reserve_marks(struct sampler *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 16;
    while (cap < n)
        cap *= 2;
    struct sampler_mark *a = realloc(s->marks, cap * sizeof *a);
    if (a)
        s->marks = a;
    struct sampler_mark *b = a ? realloc(s->next, cap * sizeof *b) : NULL;
    if (!b)
        return -1;
    s->next = b;
    s->cap = cap;
    return 0;
}

/* The CPU used between two readings of a cumulative counter, in cores. None when the counter
 * went backwards (what it sums lost a part) or no time passed between them. */
static bool cpu_between(uint64_t prev_ns, int64_t prev_at, uint64_t now_ns, int64_t now_at,
                        double *cores)
{
    if (now_ns < prev_ns || now_at <= prev_at)
        return false;
    *cores = (double)(now_ns - prev_ns) / (double)(now_at - prev_at);
    return true;
}

/* The usage of one task from its reading and the previous pass's mark. */
static void usage_of(const struct sampler_mark *prev, const struct sampler_mark *now,
                     const struct reading *r, struct task_usage *u)
{
    *u = (struct task_usage){.sampled = true,
                             .source = r->source,
                             .has_memory = r->has_memory,
                             .memory_bytes = r->memory_bytes};
    u->has_cpu = prev && prev->source == now->source &&
                 cpu_between(prev->cpu_ns, prev->at_ns, now->cpu_ns, now->at_ns, &u->cpu_cores);
}

/* A DOCKER task: the sum of its running containers' documents. Every one is taken (so each
 * stream stays open) even when an earlier one had none; one missing leaves the task without a
 * datapoint, since a part of its containers is not the task. */
static void sample_docker_task(struct sampler *s, const struct ecs_task *t, struct task_usage *u)
{
    struct task_usage sum = {.sampled = t->n_procs > 0,
                             .source = USAGE_DOCKER_STATS,
                             .has_cpu = true,
                             .has_memory = true};
    for (int i = 0; i < t->n_procs; i++) {
        struct container_sample c;
        double cores = 0;
        if (!s->docker || !docker_stats_take(s->docker, t->procs[i].docker_id, &c)) {
            sum.sampled = false;
            continue;
        }
        sum.has_cpu =
            sum.has_cpu && c.has_prev &&
            cpu_between(c.prev.cpu_ns, c.prev.read_ns, c.now.cpu_ns, c.now.read_ns, &cores);
        sum.cpu_cores += cores;
        sum.has_memory = sum.has_memory && c.now.has_memory;
        sum.memory_bytes += c.now.memory_b;
    }
    if (!sum.sampled)
        return;
    if (!sum.has_cpu)
        sum.cpu_cores = 0;
    if (!sum.has_memory)
        sum.memory_bytes = 0;
    *u = sum;
}

static bool any_docker_task(const struct task_list *tasks)
{
    for (size_t i = 0; i < tasks->n; i++)
        if (tasks->items[i].launch == ECS_LAUNCH_DOCKER)
            return true;
    return false;
}

/* The streams to dockerd for this pass: opened when a DOCKER task is listed, closed when none
 * is (nothing then talks to dockerd). */
static void docker_begin(struct sampler *s, const struct task_list *tasks)
{
    if (!any_docker_task(tasks)) {
        docker_stats_close(s->docker);
        s->docker = NULL;
        return;
    }
    if (!s->docker && s->docker_socket && !(s->docker = docker_stats_open(s->docker_socket)))
        log_error("out of memory: DOCKER tasks are not sampled");
    if (s->docker)
        docker_stats_begin(s->docker);
}

int sampler_run(struct sampler *s, const struct task_list *tasks, struct task_usage *usage)
{
    if (reserve_marks(s, tasks->n) < 0)
        return -1;
    procfs_groups_reset(&s->groups);
    docker_begin(s, tasks);
    s->n_next = 0;
    for (size_t i = 0; i < tasks->n; i++) {
        const struct ecs_task *t = &tasks->items[i];
        struct reading r;
        usage[i] = (struct task_usage){0};
        if (t->launch == ECS_LAUNCH_DOCKER) {
            sample_docker_task(s, t, &usage[i]);
            continue;
        }
        if (read_task(s, t, &r) < 0)
            continue;
        struct sampler_mark *m = &s->next[s->n_next++];
        memcpy(m->cluster, t->cluster, sizeof m->cluster);
        memcpy(m->id, t->id, sizeof m->id);
        m->cpu_ns = r.cpu_ns;
        m->at_ns = clock_mono_ns();
        m->source = r.source;
        usage_of(find_mark(s, t), m, &r, &usage[i]);
    }
    if (s->docker)
        docker_stats_end(s->docker);
    if (s->n_next > 1) /* qsort wants an array, even of nothing */
        qsort(s->next, s->n_next, sizeof *s->next, mark_cmp);
    struct sampler_mark *old = s->marks;
    s->marks = s->next;
    s->n_marks = s->n_next;
    s->next = old;
    return 0;
}
