/* The PROCESS launch type's runner: starts a task's containers as child processes and signals
 * them. Each container is one process (entryPoint + command) in its own process group, in the
 * task's work directory, with stdin from /dev/null and stdout and stderr appended to its log
 * file, in the task's cgroup when cgroups are available (v2, else v1's cpu and memory
 * hierarchies), else under rlimits (a warning is logged once at init).
 *
 * The runner reaps no process it hands back: the caller watches the pids (ev_child) and calls
 * runner_task_done() once every container of the task has exited. (runner_start() reaps the
 * processes it started itself when it fails.) */
#ifndef GANTRY_CORE_RUNNER_H
#define GANTRY_CORE_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum runner_cgroup_mode { RUNNER_CGROUP_NONE, RUNNER_CGROUP_V1, RUNNER_CGROUP_V2 };

struct runner {
    enum runner_cgroup_mode mode;
    char v2_base[512];     /* v2: the cgroup directory tasks are created under */
    char v1_cpu_base[512]; /* v1: the cpu hierarchy's directory tasks are created under */
    char v1_mem_base[512]; /* v1: the memory hierarchy's */
    char why_none[256];    /* RUNNER_CGROUP_NONE: why (for the log and `gantry status`) */
};

struct runner_limits {
    int cpu_units;             /* task-level cpu (1024 = one core): a hard quota; 0: none */
    int cpu_shares;            /* sum of the containers' cpu: relative weight; 0: default */
    int64_t memory_bytes;      /* hard limit; 0: none */
    int64_t memory_soft_bytes; /* memoryReservation: soft limit where supported; 0: none */
};

struct runner_container {
    const char *name;     /* container name: the log file is DIR/NAME.log */
    char *const *argv;    /* NULL-terminated; argv[0] is looked up in PATH when it has no '/' */
    char *const *envp;    /* the whole environment, NULL-terminated */
    pid_t pid;            /* out: the process (and process group) id */
    uint64_t start_ticks; /* out: its start time (/proc/PID/stat field 22), to tell a reused pid */
};

/* Detects the cgroup mode. use_cgroups false: RUNNER_CGROUP_NONE. Logs what it found. */
void runner_init(struct runner *r, bool use_cgroups);

/* Creates task_dir (and task_dir/work, the containers' working directory) and the task's cgroup
 * (named after task_id), applies limits, then starts every container. Returns 0, or -1 with a
 * reason in why (exec failures are reported here: a program that cannot be executed is an error,
 * not an exit) after stopping and reaping what it had started (pids and start_ticks are then 0). */
int runner_start(struct runner *r, const char *task_id, const char *task_dir,
                 const struct runner_limits *limits, struct runner_container *containers,
                 int n_containers, char *why, size_t why_size);

/* Sends sig to the container's whole process group; a no-op for pid <= 1. */
void runner_signal(pid_t pid, int sig);

/* The task's containers have exited: kills what is left in its cgroup (a container's own
 * children) and removes the cgroup. The task directory stays (for logs). */
void runner_task_done(struct runner *r, const char *task_id);

/* The start time of pid from /proc (0 if it does not exist): a pid whose start time differs from
 * the recorded one is another process. */
uint64_t runner_start_ticks(pid_t pid);

/* Whether pid is still the container process the runner started at start_ticks: same start
 * time, and the leader of its own process group (so signalling the group is safe). */
bool runner_is_ours(pid_t pid, uint64_t start_ticks);

/* A pidfd for a container process started by an earlier gantry-core (no child of this one: its
 * exit cannot be waited for), or -1 (it is not ours, or the kernel has no pidfd_open: poll
 * runner_is_ours instead). The fd becomes readable when the process exits. */
int runner_pidfd(pid_t pid, uint64_t start_ticks);

/* runner_start leaves DIR/NAME.pid per container. At start, every such file under
 * run_dir/tasks whose process is still ours (same start time, its own group) and that `owned`
 * does not claim is killed (its group, SIGKILL): a core killed between starting a task and
 * recording it must not leave it running unseen. Returns the task directories looked at. */
typedef bool (*runner_owned_fn)(void *ctx, const char *task_id, const char *container, pid_t pid);
int runner_kill_orphans(const char *run_dir, runner_owned_fn owned, void *ctx);

#endif
