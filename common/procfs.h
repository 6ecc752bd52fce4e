/* What gantry-core and gantry-metrics read about processes from /proc: a process's start time (to
 * tell a reused pid from the process gantry-core started), its process group, its CPU time and its
 * resident memory (/proc/PID/stat), and a table of every process by process group, for tasks that
 * run without cgroups. Nothing read here is trusted to stay true: a pid may exit or be reused
 * between two reads, which callers treat as "no sample", never as zero. */
#ifndef GANTRY_COMMON_PROCFS_H
#define GANTRY_COMMON_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_stat {
    char state; /* field 3: 'R', 'S', ... 'Z' for a zombie (exited, not yet reaped) */
    pid_t pgrp;
    uint64_t start_ticks; /* field 22: clock ticks after boot */
    /* utime + stime + cutime + cstime, in clock ticks: the process's own time and that of the
     * children it reaped, so the time of a task's short-lived helpers is not lost when they exit
     * and their parent waits for them. */
    uint64_t cpu_ticks;
    uint64_t rss_bytes;
};

/* Parses the text of /proc/PID/stat (the command name may hold spaces and parentheses: fields
 * are counted from the last ')'). 0 or -1. Pure. */
int procfs_parse_stat(const char *text, struct proc_stat *out);

/* Reads /proc/PID/stat. 0, or -1 when the process does not exist (any more) or does not read. */
int procfs_read_stat(pid_t pid, struct proc_stat *out);

/* Whether pid is still the container process gantry-core started: it exists with the recorded
 * start time (a pid the kernel handed to another process since has another). out (may be NULL)
 * gets its stat. */
bool procfs_is_container(pid_t pid, uint64_t start_ticks, struct proc_stat *out);

/* Clock ticks to nanoseconds (sysconf(_SC_CLK_TCK), read once by the caller). */
uint64_t procfs_ticks_to_ns(uint64_t ticks, long clk_tck);

/* Every process on the machine by process group, built by one scan of /proc, for the tasks of a
 * gantry-core without cgroups (each container leads its own process group). */
struct proc_group_entry {
    pid_t pgrp;
    uint64_t cpu_ticks;
    uint64_t rss_bytes;
};

struct proc_groups {
    struct proc_group_entry *items; /* sorted by pgrp */
    size_t n, cap;
    bool built;
};

/* Scans /proc once (later calls until procfs_groups_reset do nothing). 0, or -1 when /proc cannot
 * be read or memory runs out (the table is then empty). */
int procfs_groups_build(struct proc_groups *g);
/* The sum over the members of process group pgrp; false when it has none. */
bool procfs_groups_sum(const struct proc_groups *g, pid_t pgrp, uint64_t *cpu_ticks,
                       uint64_t *rss_bytes);
/* Forgets the scan (kept memory) so the next pass scans again. */
void procfs_groups_reset(struct proc_groups *g);
void procfs_groups_free(struct proc_groups *g);

/* A small text file whole (at most size - 1 bytes, NUL-terminated): its length, or -1. */
ssize_t procfs_read_file(const char *path, char *buf, size_t size);

/* Whether word is one of the items of list, separated by any of seps ("rw,cpu,cpuacct"). */
bool procfs_has_token(const char *list, const char *seps, const char *word);
/* Undoes /proc/PID/mountinfo's escapes (space, tab, newline and backslash as \ooo), in place. */
void procfs_unescape_octal(char *s);

#endif
