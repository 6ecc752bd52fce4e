/* Where a task's cgroup is, and what it has used. gantry-core's runner puts each task in a cgroup
 * named after the task id under a `gantry` child of its own cgroup (core/runner.c): on cgroup v2
 * one directory, on v1 one in the cpu hierarchy and one in the memory hierarchy. gantry-metrics
 * finds it from /proc/PID/cgroup of one of the task's container processes, accepting only a path
 * that ends in /gantry/TASK_ID (a task run without cgroups sits in gantry-core's own cgroup, whose
 * numbers are not the task's), and maps that path to a directory through the cgroup mounts of
 * /proc/self/mountinfo.
 *
 * CPU: v2's cpu.stat usage_usec, or v1's cpuacct.usage when cpuacct shares the cpu hierarchy
 * (cumulative counters that keep the time of exited processes); v1 without cpuacct has no such
 * counter, and the caller sums the processes of cgroup.procs instead (cg_procs_sum).
 * Memory: v2's memory.current minus its inactive file pages (memory.stat anon when that does not
 * read), v1's memory.stat total_rss (anonymous memory, transparent huge pages included). */
#ifndef GANTRY_METRICS_CGROUP_H
#define GANTRY_METRICS_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { CG_MAX_MOUNTS = 32, CG_PATH_MAX = 1024 };

struct cg_mount {
    bool v2;
    char options[256]; /* v1: the super options, which name the controllers ("rw,cpu,cpuacct") */
    char root[CG_PATH_MAX];  /* the hierarchy's directory shown at the mount point */
    char point[CG_PATH_MAX]; /* the mount point */
};

struct cg_mounts {
    struct cg_mount items[CG_MAX_MOUNTS];
    int n;
};

/* The cgroup mounts of /proc/self/mountinfo. 0, or -1 when it cannot be read (no mounts then). */
int cg_mounts_load(struct cg_mounts *m);
/* One mountinfo line (modified: split and unescaped): 1 and out filled when it mounts a cgroup
 * hierarchy, 0 when it mounts something else, -1 when it does not read. Pure. */
int cg_mount_parse_line(char *line, struct cg_mount *out);

enum cg_mode { CG_NONE, CG_V1, CG_V2 };

struct task_cg {
    enum cg_mode mode;
    char cpu_dir[CG_PATH_MAX]; /* v2: the task's cgroup; v1: its cpu hierarchy's ("" if none) */
    char mem_dir[CG_PATH_MAX]; /* v1: its memory hierarchy's ("" if none) */
    bool cpuacct;              /* v1: cpuacct shares the cpu hierarchy (cpuacct.usage) */
};

/* From the text of /proc/PID/cgroup: the task's cgroup directories. 0, or -1 when the process is
 * in no cgroup of that task (out->mode is then CG_NONE). Pure but for the mounts given. */
int cg_locate(const struct cg_mounts *m, const char *proc_cgroup, const char *task_id,
              struct task_cg *out);
/* cg_locate() on /proc/PID/cgroup. */
int cg_find_task(const struct cg_mounts *m, pid_t pid, const char *task_id, struct task_cg *out);

/* Cumulative CPU time of the cgroup in ns. 0, or -1 when it has no such counter or it does not
 * read (the cgroup is gone). */
int cg_cpu_usage_ns(const struct task_cg *cg, uint64_t *ns);
/* Memory in use, as above. 0, or -1 (v1 without the memory hierarchy, or the cgroup is gone). */
int cg_memory_bytes(const struct task_cg *cg, uint64_t *bytes);
/* The sums of procfs_read_stat() over the processes of the cgroup's cgroup.procs (cpu_ticks,
 * rss_bytes). 0, or -1 when the file does not read or lists no process that could be read. */
int cg_procs_sum(const struct task_cg *cg, uint64_t *cpu_ticks, uint64_t *rss_bytes);

/* The value of "KEY VALUE" in a flat keyed file (memory.stat, cpu.stat). Pure. */
bool cg_stat_value(const char *text, const char *key, uint64_t *out);

#endif
