/* The PROCESS launch type's runner (contract in runner.h).
 *
 * Between fork() and exec the child calls only async-signal-safe functions and allocates nothing:
 * every path it needs is built by the parent first, because gantry-core may link libraries that
 * start threads and a forked child of a threaded process must not touch malloc's locks. The
 * child reports a failure before exec through a close-on-exec pipe, so that "cannot execute" is
 * an error of runner_start() rather than an exit status seen later. */
#include "core/runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/procfs.h"

#define V2_ROOT "/sys/fs/cgroup"
#define BASE_NAME "gantry"

enum {
    CPU_PERIOD_US = 100000,
    /* The kernel rejects a CFS quota below 1 ms (v1 and v2 alike). */
    CPU_QUOTA_MIN_US = 1000,
    CPU_SHARES_MIN = 2,
    CPU_SHARES_MAX = 262144,
    CPU_WEIGHT_MIN = 1,
    CPU_WEIGHT_MAX = 10000,
    /* Processes killed in a task's cgroup are not our children: they exit on their own
     * schedule, and the cgroup cannot be removed before they have (at most 200 ms of waiting). */
    RMDIR_ATTEMPTS_AFTER_KILL = 200,
    MAX_LIMIT_WRITES = 6,
};

/* Where a child was when it failed before exec, for the parent's message. */
enum child_stage {
    STAGE_CGROUP = 1,
    STAGE_RLIMIT,
    STAGE_STDIO,
    STAGE_CHDIR,
    STAGE_FDS,
    STAGE_EXEC,
};

struct child_report {
    int stage;
    int err;
};

/* A task's cgroup directories: one on v2, the cpu and the memory hierarchy's on v1. */
struct task_cgroup {
    int n;
    const char *base[2]; /* the runner's base each dir is under */
    char dir[2][PATH_MAX];
    char procs[2][PATH_MAX]; /* dir/cgroup.procs, built before fork for the child */
};

/* What every container of one task starts with, prepared before any fork. */
struct launch {
    const char *task_dir;
    char work_dir[PATH_MAX];
    const struct task_cgroup *cg;
    int64_t rlimit_as; /* RUNNER_CGROUP_NONE's stand-in for memory_bytes; 0: none */
    int null_fd;
};

static char *const no_env[] = {NULL};

struct limit_write {
    const char *dir;
    const char *file;
    char value[48];
};

/* ---- Small file and path helpers ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void set_why(char *why, size_t size, const char *fmt,
                                                          ...)
{
    if (size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* "a" + "/" + "b" into out; -1 (ENAMETOOLONG) if it does not fit. */
static int join_path(char *out, size_t size, const char *a, const char *b)
{
    int n = snprintf(out, size, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* One write, as cgroup files want: the kernel parses each write(2) as a whole value. */
static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    if (n == (ssize_t)len)
        return 0;
    errno = n < 0 ? saved : EIO;
    return -1;
}

static int make_dir(const char *path, mode_t mode)
{
    return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

/* mkdir -p */
static int make_dirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", path);
    if (n < 0 || (size_t)n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (make_dir(buf, mode) != 0)
            return -1;
        *p = '/';
    }
    return make_dir(buf, mode);
}

/* A name used as one path component: no '/', not "." or "..". */
static bool valid_component(const char *s)
{
    return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Moves fd to a number above stdio (keeping it close-on-exec), so that the child's dup2() onto
 * 0, 1 and 2 cannot overwrite it when the daemon runs with one of them closed. */
static int fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

/* ---- Cgroup detection --------------------------------------------------------------------- */

/* The process's own cgroup from /proc/self/cgroup: the v1 hierarchy holding controller, or the
 * v2 hierarchy ("0::/path") when controller is NULL. */
static int own_cgroup(const char *controller, char *out, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int rc = -1;
    while (rc != 0 && getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *list = strchr(line, ':');
        char *path = list ? strchr(list + 1, ':') : NULL;
        if (!path)
            continue;
        *path++ = '\0';
        *list++ = '\0'; /* line is now the hierarchy id: "0" for the v2 entry "0::/path" */
        bool match = controller ? procfs_has_token(list, ",", controller)
                                : strcmp(line, "0") == 0 && *list == '\0';
        if (match && (size_t)snprintf(out, size, "%s", path) < size)
            rc = 0;
    }
    free(line);
    fclose(f);
    return rc;
}

/* One mountinfo line: whether it mounts a v1 hierarchy holding controller; if so its root (the
 * hierarchy's directory shown at the mount point) and mount point. */
static bool v1_mount_line(char *line, const char *controller, char *root, char *point, size_t size)
{
    char *fields[64];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(line, " \n", &save); tok && n < 64;
         tok = strtok_r(NULL, " \n", &save))
        fields[n++] = tok;
    int dash = 6; /* the optional fields (from the 7th) end at "-" */
    while (dash < n && strcmp(fields[dash], "-") != 0)
        dash++;
    if (dash + 3 >= n || strcmp(fields[dash + 1], "cgroup") != 0 ||
        !procfs_has_token(fields[dash + 3], ",", controller))
        return false;
    procfs_unescape_octal(fields[3]);
    procfs_unescape_octal(fields[4]);
    return (size_t)snprintf(root, size, "%s", fields[3]) < size &&
           (size_t)snprintf(point, size, "%s", fields[4]) < size;
}

static int find_v1_mount(const char *controller, char *root, char *point, size_t size)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0)
        found = v1_mount_line(line, controller, root, point, size);
    free(line);
    fclose(f);
    return found ? 0 : -1;
}

/* Creating and removing a child is what runner_start() will do: a read-only mount, a missing
 * permission or a hierarchy out of cgroups shows here rather than at the first task. */
static int probe_cgroup_dir(const char *dir)
{
    char probe[PATH_MAX];
    char name[32];
    snprintf(name, sizeof name, ".probe-%ld", (long)getpid());
    if (join_path(probe, sizeof probe, dir, name) != 0 || mkdir(probe, 0755) != 0)
        return -1;
    return rmdir(probe);
}

/* <mount point><own cgroup relative to the mount's root>/gantry, created and probed. */
static int v1_base(const char *controller, char *base, size_t base_size, char *why, size_t why_size)
{
    char root[PATH_MAX], point[PATH_MAX], own[PATH_MAX];
    if (find_v1_mount(controller, root, point, sizeof root) != 0) {
        set_why(why, why_size, "no cgroup v1 hierarchy with the %s controller is mounted",
                controller);
        return -1;
    }
    if (own_cgroup(controller, own, sizeof own) != 0) {
        set_why(why, why_size, "/proc/self/cgroup names no %s cgroup", controller);
        return -1;
    }
    /* A mount of a subdirectory of the hierarchy shows our cgroup under a shorter path. */
    const char *rel = own;
    size_t root_len = strcmp(root, "/") == 0 ? 0 : strlen(root);
    if (root_len &&
        (strncmp(own, root, root_len) != 0 || (own[root_len] && own[root_len] != '/'))) {
        set_why(why, why_size, "our %s cgroup %s is outside its mount %s (root %s)", controller,
                own, point, root);
        return -1;
    }
    rel += root_len;
    int n = snprintf(base, base_size, "%s%s/" BASE_NAME, point, strcmp(rel, "/") == 0 ? "" : rel);
    if (n < 0 || (size_t)n >= base_size) {
        set_why(why, why_size, "the %s cgroup path is too long", controller);
        return -1;
    }
    if (make_dir(base, 0755) != 0 || probe_cgroup_dir(base) != 0) {
        set_why(why, why_size, "cannot create cgroups under %s: %s", base, strerror(errno));
        return -1;
    }
    return 0;
}

static int detect_v1(struct runner *r, char *why, size_t why_size)
{
    if (v1_base("cpu", r->v1_cpu_base, sizeof r->v1_cpu_base, why, why_size) != 0 ||
        v1_base("memory", r->v1_mem_base, sizeof r->v1_mem_base, why, why_size) != 0)
        return -1;
    r->mode = RUNNER_CGROUP_V1;
    return 0;
}

/* Makes cpu and memory available to dir's children (a no-op when they already are). */
static int v2_enable_controllers(const char *dir, char *why, size_t why_size)
{
    char path[PATH_MAX], text[512];
    if (join_path(path, sizeof path, dir, "cgroup.controllers") != 0 ||
        procfs_read_file(path, text, sizeof text) < 0) {
        set_why(why, why_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (!procfs_has_token(text, " \n", "cpu") || !procfs_has_token(text, " \n", "memory")) {
        text[strcspn(text, "\n")] = '\0';
        set_why(why, why_size, "the cgroup %s lacks the cpu or memory controller (it has: %s)", dir,
                text);
        return -1;
    }
    if (join_path(path, sizeof path, dir, "cgroup.subtree_control") != 0 ||
        procfs_read_file(path, text, sizeof text) < 0) {
        set_why(why, why_size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (procfs_has_token(text, " \n", "cpu") && procfs_has_token(text, " \n", "memory"))
        return 0;
    if (write_file(path, "+cpu +memory") == 0)
        return 0;
    if (errno == EBUSY)
        set_why(why, why_size,
                "cannot enable cpu and memory in %s: the cgroup has processes of its own "
                "(cgroup v2 allows controllers only below cgroups without processes)",
                path);
    else
        set_why(why, why_size, "cannot enable cpu and memory in %s: %s", path, strerror(errno));
    return -1;
}

static int detect_v2(struct runner *r, char *why, size_t why_size)
{
    char own[PATH_MAX], dir[PATH_MAX];
    if (own_cgroup(NULL, own, sizeof own) != 0) {
        set_why(why, why_size, "/proc/self/cgroup has no cgroup v2 entry");
        return -1;
    }
    int n = snprintf(dir, sizeof dir, V2_ROOT "%s", strcmp(own, "/") == 0 ? "" : own);
    if (n < 0 || (size_t)n >= sizeof dir) {
        set_why(why, why_size, "the cgroup path is too long");
        return -1;
    }
    if (v2_enable_controllers(dir, why, why_size) != 0)
        return -1;
    if (join_path(r->v2_base, sizeof r->v2_base, dir, BASE_NAME) != 0 ||
        make_dir(r->v2_base, 0755) != 0) {
        set_why(why, why_size, "cannot create %s: %s", r->v2_base, strerror(errno));
        return -1;
    }
    if (v2_enable_controllers(r->v2_base, why, why_size) != 0)
        return -1;
    if (probe_cgroup_dir(r->v2_base) != 0) {
        set_why(why, why_size, "cannot create cgroups under %s: %s", r->v2_base, strerror(errno));
        return -1;
    }
    r->mode = RUNNER_CGROUP_V2;
    return 0;
}

/* Task cgroups a gantry-core that died left behind: rmdir only removes a cgroup without
 * processes, so a running task's (this core's or another's) stays; one made in the last minute
 * may be another core's task about to start, and stays too. */
static void remove_empty_children(const char *base)
{
    DIR *dir = base[0] ? opendir(base) : NULL;
    if (!dir)
        return;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        char path[1024];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", base, e->d_name) >= (int)sizeof path ||
            stat(path, &st) != 0 || time(NULL) - st.st_mtime < 60)
            continue;
        removed += rmdir(path) == 0;
    }
    closedir(dir);
    if (removed)
        log_info("runner: removed %d empty task cgroups left under %s", removed, base);
}

void runner_init(struct runner *r, bool use_cgroups)
{
    memset(r, 0, sizeof *r);
    char why[sizeof r->why_none] = "cgroups are disabled in the configuration";
    int rc = -1;
    if (use_cgroups) {
        struct stat st;
        bool v2 = stat(V2_ROOT "/cgroup.controllers", &st) == 0;
        rc = v2 ? detect_v2(r, why, sizeof why) : detect_v1(r, why, sizeof why);
    }
    if (rc == 0 && r->mode == RUNNER_CGROUP_V2) {
        log_info("runner: cgroup v2, tasks under %s", r->v2_base);
        remove_empty_children(r->v2_base);
        return;
    }
    if (rc == 0) {
        log_info("runner: cgroup v1, tasks under %s and %s", r->v1_cpu_base, r->v1_mem_base);
        remove_empty_children(r->v1_cpu_base);
        remove_empty_children(r->v1_mem_base);
        return;
    }
    memset(r, 0, sizeof *r);
    r->mode = RUNNER_CGROUP_NONE;
    snprintf(r->why_none, sizeof r->why_none, "%s", why);
    log_warn("runner: no cgroups (%s): task limits fall back to rlimits (memory as RLIMIT_AS per "
             "process, cpu unlimited)",
             r->why_none);
}

/* ---- A task's cgroup ---------------------------------------------------------------------- */

static int task_cgroup_paths(const struct runner *r, const char *task_id, struct task_cgroup *cg)
{
    const char *bases[2] = {NULL, NULL};
    cg->n = 0;
    if (r->mode == RUNNER_CGROUP_V2) {
        bases[0] = r->v2_base;
    } else if (r->mode == RUNNER_CGROUP_V1) {
        bases[0] = r->v1_cpu_base;
        /* Both controllers may share one hierarchy (mounted as "cpu,memory"). */
        if (strcmp(r->v1_cpu_base, r->v1_mem_base) != 0)
            bases[1] = r->v1_mem_base;
    }
    for (int i = 0; i < 2 && bases[i]; i++) {
        cg->base[i] = bases[i];
        if (join_path(cg->dir[i], sizeof cg->dir[i], bases[i], task_id) != 0 ||
            join_path(cg->procs[i], sizeof cg->procs[i], cg->dir[i], "cgroup.procs") != 0)
            return -1;
        cg->n = i + 1;
    }
    return 0;
}

/* The directory holding file: on v1 the memory files live in the memory hierarchy. */
static const char *v1_dir_for(const struct task_cgroup *cg, const char *file)
{
    return cg->n == 2 && strncmp(file, "memory.", 7) == 0 ? cg->dir[1] : cg->dir[0];
}

static void add_write(struct limit_write *w, int *n, const struct task_cgroup *cg, const char *file,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_write(struct limit_write *w, int *n, const struct task_cgroup *cg, const char *file,
                      const char *fmt, ...)
{
    struct limit_write *e = &w[(*n)++];
    e->dir = v1_dir_for(cg, file);
    e->file = file;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->value, sizeof e->value, fmt, ap);
    va_end(ap);
}

/* systemd's and the kernel's conversion: 1024 shares (v1's default) is weight 100 (v2's). */
static int64_t shares_to_weight(int shares)
{
    int64_t s = shares < CPU_SHARES_MIN ? CPU_SHARES_MIN : shares;
    s = s > CPU_SHARES_MAX ? CPU_SHARES_MAX : s;
    int64_t w = s * 100 / 1024;
    return w < CPU_WEIGHT_MIN ? CPU_WEIGHT_MIN : w > CPU_WEIGHT_MAX ? CPU_WEIGHT_MAX : w;
}

/* The files to write for limits, in order (v1 wants the period before the quota). */
static int limit_writes(enum runner_cgroup_mode mode, const struct task_cgroup *cg,
                        const struct runner_limits *l, struct limit_write *w)
{
    int n = 0;
    int64_t quota = (int64_t)l->cpu_units * CPU_PERIOD_US / 1024;
    quota = quota < CPU_QUOTA_MIN_US ? CPU_QUOTA_MIN_US : quota;
    bool v2 = mode == RUNNER_CGROUP_V2;
    if (l->cpu_units > 0 && v2)
        add_write(w, &n, cg, "cpu.max", "%" PRId64 " %d", quota, CPU_PERIOD_US);
    if (l->cpu_units > 0 && !v2) {
        add_write(w, &n, cg, "cpu.cfs_period_us", "%d", CPU_PERIOD_US);
        add_write(w, &n, cg, "cpu.cfs_quota_us", "%" PRId64, quota);
    }
    if (l->cpu_shares > 0 && v2)
        add_write(w, &n, cg, "cpu.weight", "%" PRId64, shares_to_weight(l->cpu_shares));
    if (l->cpu_shares > 0 && !v2)
        add_write(w, &n, cg, "cpu.shares", "%d",
                  l->cpu_shares < CPU_SHARES_MIN   ? CPU_SHARES_MIN
                  : l->cpu_shares > CPU_SHARES_MAX ? CPU_SHARES_MAX
                                                   : l->cpu_shares);
    if (l->memory_bytes > 0)
        add_write(w, &n, cg, v2 ? "memory.max" : "memory.limit_in_bytes", "%" PRId64,
                  l->memory_bytes);
    if (l->memory_soft_bytes > 0)
        add_write(w, &n, cg, v2 ? "memory.low" : "memory.soft_limit_in_bytes", "%" PRId64,
                  l->memory_soft_bytes);
    return n;
}

/* Removes the task's cgroup directories, trying up to attempts times while they are busy. */
static void task_cgroup_remove(const struct task_cgroup *cg, int attempts)
{
    for (int i = 0; i < cg->n; i++) {
        for (int left = attempts; left > 0; left--) {
            if (rmdir(cg->dir[i]) == 0 || errno == ENOENT)
                break;
            if (errno != EBUSY) {
                log_warn("runner: cannot remove %s: %s", cg->dir[i], strerror(errno));
                break;
            }
            if (left == 1) {
                log_debug("runner: %s is still busy; it stays", cg->dir[i]);
                break;
            }
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
    }
}

/* The base may have been removed since runner_init() (by an operator, or by another gantry
 * cleaning up an empty one): it is recreated rather than failing every task from then on. */
static int make_task_cgroup_dir(enum runner_cgroup_mode mode, const char *base, const char *dir,
                                char *why, size_t why_size)
{
    int rc = make_dir(dir, 0755);
    if (rc != 0 && errno == ENOENT && make_dir(base, 0755) == 0) {
        if (mode == RUNNER_CGROUP_V2 && v2_enable_controllers(base, why, why_size) != 0)
            return -1;
        log_info("runner: recreated %s", base);
        rc = make_dir(dir, 0755);
    }
    if (rc != 0)
        set_why(why, why_size, "cannot create the cgroup %s: %s", dir, strerror(errno));
    return rc;
}

static int task_cgroup_create(enum runner_cgroup_mode mode, const struct task_cgroup *cg,
                              const struct runner_limits *limits, char *why, size_t why_size)
{
    if (cg->n == 0)
        return 0;
    for (int i = 0; i < cg->n; i++) {
        if (make_task_cgroup_dir(mode, cg->base[i], cg->dir[i], why, why_size) != 0) {
            task_cgroup_remove(cg, 1);
            return -1;
        }
    }
    struct limit_write w[MAX_LIMIT_WRITES];
    int n = limit_writes(mode, cg, limits, w);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (join_path(path, sizeof path, w[i].dir, w[i].file) != 0 ||
            write_file(path, w[i].value) != 0) {
            set_why(why, why_size, "cannot write '%s' to %s/%s: %s", w[i].value, w[i].dir,
                    w[i].file, strerror(errno));
            task_cgroup_remove(cg, 1);
            return -1;
        }
    }
    return 0;
}

/* Kills what is left in the task's cgroup (descendants that outlived their container, or left
 * its process group); returns how many it signalled. */
static int kill_cgroup_procs(const struct task_cgroup *cg)
{
    int killed = 0;
    for (int i = 0; i < cg->n; i++) {
        FILE *f = fopen(cg->procs[i], "re");
        if (!f)
            continue;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            killed += pid > 0 && kill((pid_t)pid, SIGKILL) == 0;
        fclose(f);
    }
    return killed;
}

/* ---- The child, between fork and exec: async-signal-safe calls only ----------------------- */

static int join_cgroup(const struct task_cgroup *cg)
{
    for (int i = 0; i < cg->n; i++) {
        int fd = open(cg->procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        /* "0" is the writing process itself. */
        ssize_t n = write(fd, "0", 1);
        int saved = errno;
        close(fd);
        if (n != 1) {
            errno = n < 0 ? saved : EIO;
            return -1;
        }
    }
    return 0;
}

/* The daemon ignores some signals (SIGPIPE) and handles others through libev; ignored
 * dispositions and the mask survive exec, and a handler that ran in the child before exec would
 * poke the parent's loop through their shared pipe. Called with every signal blocked. */
static void reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and libc's own */
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
}

/* Fallback for kernels before close_range(): marks every listed fd above 2 close-on-exec. */
static int cloexec_listed_fds(void)
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n;
    while ((n = getdents64(dir, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
            off += d->d_reclen;
            int fd = 0;
            const char *p = d->d_name;
            for (; *p >= '0' && *p <= '9'; p++)
                fd = fd * 10 + (*p - '0');
            if (*p == '\0' && p != d->d_name && fd > 2 && fd != dir)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    close(dir);
    return n < 0 ? -1 : 0;
}

/* Everything above stdio closes at exec: the daemon's listening sockets, Redis connection and
 * other tasks' log files must not leak into a container. */
static int cloexec_other_fds(void)
{
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return 0;
    return cloexec_listed_fds();
}

/* Returns the stage that failed, errno set; or 0 when ready to exec. */
static int child_setup(const struct launch *l, int log_fd)
{
    setpgid(0, 0);
    if (join_cgroup(l->cg) != 0)
        return STAGE_CGROUP;
    if (l->rlimit_as > 0) {
        struct rlimit rl = {(rlim_t)l->rlimit_as, (rlim_t)l->rlimit_as};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return STAGE_RLIMIT;
    }
    if (dup2(l->null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        return STAGE_STDIO;
    if (chdir(l->work_dir) != 0)
        return STAGE_CHDIR;
    reset_signals();
    if (cloexec_other_fds() != 0)
        return STAGE_FDS;
    return 0;
}

static _Noreturn void child_run(const struct launch *l, const struct runner_container *c,
                                int log_fd, int report_fd)
{
    int stage = child_setup(l, log_fd);
    if (stage == 0) {
        /* execvpe() searches the caller's PATH (environ's), not envp's: the container's PATH
         * must decide, so environ becomes the container's environment. */
        char *const *envp = c->envp ? c->envp : no_env;
        environ = (char **)envp;
        execvpe(c->argv[0], c->argv, envp);
        stage = STAGE_EXEC;
    }
    struct child_report rep = {stage, errno};
    ssize_t n = write(report_fd, &rep, sizeof rep);
    (void)n;
    _exit(127);
}

/* ---- The parent ----------------------------------------------------------------------------- */

/* 0: the child reached exec (the pipe closed empty); -1: it failed, rep says where. */
static int read_report(int fd, struct child_report *rep)
{
    ssize_t n;
    do
        n = read(fd, rep, sizeof *rep);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return 0;
    if (n != (ssize_t)sizeof *rep) {
        rep->stage = STAGE_EXEC;
        rep->err = n < 0 ? errno : EIO;
    }
    return -1;
}

static void describe_failure(const struct launch *l, const struct runner_container *c,
                             const struct child_report *rep, char *why, size_t why_size)
{
    const char *err = strerror(rep->err);
    switch (rep->stage) {
    case STAGE_CGROUP:
        set_why(why, why_size, "container %s: cannot join the task's cgroup %s: %s", c->name,
                l->cg->dir[0], err);
        break;
    case STAGE_RLIMIT:
        set_why(why, why_size, "container %s: cannot set RLIMIT_AS: %s", c->name, err);
        break;
    case STAGE_STDIO:
        set_why(why, why_size, "container %s: cannot redirect stdio: %s", c->name, err);
        break;
    case STAGE_CHDIR:
        set_why(why, why_size, "container %s: cannot enter %s: %s", c->name, l->work_dir, err);
        break;
    case STAGE_FDS:
        set_why(why, why_size, "container %s: cannot close inherited descriptors: %s", c->name,
                err);
        break;
    default:
        set_why(why, why_size, "container %s: cannot execute '%s': %s", c->name, c->argv[0], err);
        break;
    }
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Forks with every signal blocked, so that no handler of the daemon runs in the child before
 * reset_signals(). */
static pid_t fork_child(const struct launch *l, const struct runner_container *c, int log_fd,
                        int report_fd)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_run(l, c, log_fd, report_fd);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

static int open_log(const char *task_dir, const char *name, char *why, size_t why_size)
{
    char file[NAME_MAX + 1], path[PATH_MAX];
    int n = snprintf(file, sizeof file, "%s.log", name);
    if (n < 0 || (size_t)n >= sizeof file || join_path(path, sizeof path, task_dir, file) != 0) {
        set_why(why, why_size, "container %s: the log file name is too long", name);
        return -1;
    }
    int fd = fd_above_stdio(open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (fd < 0)
        set_why(why, why_size, "container %s: cannot open %s: %s", name, path, strerror(errno));
    return fd;
}

static int start_container(const struct launch *l, struct runner_container *c, char *why,
                           size_t why_size)
{
    int log_fd = open_log(l->task_dir, c->name, why, why_size);
    if (log_fd < 0)
        return -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0 || (p[0] = fd_above_stdio(p[0])) < 0 ||
        (p[1] = fd_above_stdio(p[1])) < 0) {
        set_why(why, why_size, "container %s: pipe: %s", c->name, strerror(errno));
        close(log_fd);
        return -1;
    }
    pid_t pid = fork_child(l, c, log_fd, p[1]);
    int fork_errno = errno;
    close(p[1]);
    close(log_fd);
    if (pid < 0) {
        close(p[0]);
        set_why(why, why_size, "container %s: fork: %s", c->name, strerror(fork_errno));
        return -1;
    }
    /* Also here, so that the group exists whichever of parent and child runs first; fails with
     * EACCES once the child has exec'd, which is then already done. */
    setpgid(pid, pid);
    struct child_report rep;
    int rc = read_report(p[0], &rep);
    close(p[0]);
    if (rc != 0) {
        describe_failure(l, c, &rep, why, why_size);
        /* Normally exiting already; the kill covers a failed read of a child that did exec. */
        kill(pid, SIGKILL);
        reap(pid);
        return -1;
    }
    c->pid = pid;
    c->start_ticks = runner_start_ticks(pid);
    log_debug("runner: container %s started as pid %ld", c->name, (long)pid);
    return 0;
}

/* Undoes a partial start. Kills every started container's process group and reaps exactly the
 * container processes this call forked (its direct children), so that none of them is left for
 * the caller's ev_child to report; their descendants are not our children and are only killed. */
static void stop_started(const struct task_cgroup *cg, struct runner_container *containers, int n)
{
    for (int i = 0; i < n; i++)
        if (containers[i].pid > 0)
            kill(-containers[i].pid, SIGKILL);
    kill_cgroup_procs(cg);
    for (int i = 0; i < n; i++) {
        if (containers[i].pid > 0)
            reap(containers[i].pid);
        containers[i].pid = 0;
        containers[i].start_ticks = 0;
    }
    task_cgroup_remove(cg, RMDIR_ATTEMPTS_AFTER_KILL);
}

static int check_request(const char *task_id, const struct runner_container *containers, int n,
                         char *why, size_t why_size)
{
    if (!valid_component(task_id)) {
        set_why(why, why_size, "invalid task id '%s'", task_id ? task_id : "");
        return -1;
    }
    if (n <= 0) {
        set_why(why, why_size, "task %s has no containers", task_id);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const struct runner_container *c = &containers[i];
        if (!valid_component(c->name)) {
            set_why(why, why_size, "invalid container name '%s'", c->name ? c->name : "");
            return -1;
        }
        if (!c->argv || !c->argv[0] || !c->argv[0][0]) {
            set_why(why, why_size, "container %s has no command", c->name);
            return -1;
        }
    }
    return 0;
}

static int prepare(struct runner *r, const char *task_id, const char *task_dir,
                   const struct runner_limits *limits, struct task_cgroup *cg, struct launch *l,
                   char *why, size_t why_size)
{
    l->task_dir = task_dir;
    l->cg = cg;
    l->rlimit_as = r->mode == RUNNER_CGROUP_NONE ? limits->memory_bytes : 0;
    if (make_dirs(task_dir, 0755) != 0) {
        set_why(why, why_size, "cannot create %s: %s", task_dir, strerror(errno));
        return -1;
    }
    if (join_path(l->work_dir, sizeof l->work_dir, task_dir, "work") != 0 ||
        make_dir(l->work_dir, 0755) != 0) {
        set_why(why, why_size, "cannot create %s/work: %s", task_dir, strerror(errno));
        return -1;
    }
    if (task_cgroup_paths(r, task_id, cg) != 0) {
        set_why(why, why_size, "task %s: the cgroup path is too long", task_id);
        return -1;
    }
    return task_cgroup_create(r->mode, cg, limits, why, why_size);
}

/* DIR/NAME.pid holds "PID START_TICKS": written before gantry-core records the task in Redis,
 * so a core killed in between still finds the process at its next start (runner_kill_orphans). */
static void write_pid_file(const char *task_dir, const struct runner_container *c)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], text[64];
    snprintf(path, sizeof path, "%s/%s.pid", task_dir, c->name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int len = snprintf(text, sizeof text, "%ld %" PRIu64 "\n", (long)c->pid, c->start_ticks);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, (size_t)len) != len || rename(tmp, path) != 0)
        log_warn("runner: cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

int runner_start(struct runner *r, const char *task_id, const char *task_dir,
                 const struct runner_limits *limits, struct runner_container *containers,
                 int n_containers, char *why, size_t why_size)
{
    for (int i = 0; i < n_containers; i++) {
        containers[i].pid = 0;
        containers[i].start_ticks = 0;
    }
    if (check_request(task_id, containers, n_containers, why, why_size) != 0)
        return -1;
    struct task_cgroup cg;
    struct launch l;
    if (prepare(r, task_id, task_dir, limits, &cg, &l, why, why_size) != 0)
        return -1;
    l.null_fd = fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (l.null_fd < 0) {
        set_why(why, why_size, "cannot open /dev/null: %s", strerror(errno));
        task_cgroup_remove(&cg, 1);
        return -1;
    }
    int started = 0;
    while (started < n_containers && start_container(&l, &containers[started], why, why_size) == 0)
        write_pid_file(task_dir, &containers[started++]);
    close(l.null_fd);
    if (started == n_containers)
        return 0;
    log_debug("runner: task %s: %s", task_id, why);
    stop_started(&cg, containers, started);
    return -1;
}

void runner_signal(pid_t pid, int sig)
{
    /* pid 1 would make it kill(-1): every process we may signal */
    if (pid > 1 && kill(-pid, sig) != 0 && errno != ESRCH)
        log_warn("runner: cannot signal process group %ld: %s", (long)pid, strerror(errno));
}

void runner_task_done(struct runner *r, const char *task_id)
{
    struct task_cgroup cg;
    if (!valid_component(task_id) || task_cgroup_paths(r, task_id, &cg) != 0)
        return;
    /* The containers have exited, but their descendants may not have: a task's processes end
     * with it, as in ECS, and they would otherwise keep the cgroup alive forever. */
    int killed = kill_cgroup_procs(&cg);
    if (killed > 0)
        log_debug("runner: task %s: killed %d leftover process(es)", task_id, killed);
    task_cgroup_remove(&cg, killed > 0 ? RMDIR_ATTEMPTS_AFTER_KILL : 1);
}

uint64_t runner_start_ticks(pid_t pid)
{
    struct proc_stat st;
    return pid > 0 && procfs_read_stat(pid, &st) == 0 ? st.start_ticks : 0;
}

bool runner_is_ours(pid_t pid, uint64_t start_ticks)
{
    /* the same process (not a reused pid), still the leader of the group we made for it, and
     * alive: a container re-adopted after a restart is no child of ours, and when it exits it
     * stays a zombie until its new parent reaps it (a container's PID 1 may never do so) */
    struct proc_stat st;
    return pid > 1 && start_ticks && procfs_read_stat(pid, &st) == 0 &&
           st.start_ticks == start_ticks && st.pgrp == pid && st.state != 'Z' && st.state != 'X';
}

int runner_pidfd(pid_t pid, uint64_t start_ticks)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return -1;
    /* checked after the open: the fd now pins this very process, whatever the pid becomes */
    if (!runner_is_ours(pid, start_ticks)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
#else
    (void)pid;
    (void)start_ticks;
    return -1;
#endif
}

static void kill_if_orphan(const char *task_dir, const char *task_id, const char *file,
                           runner_owned_fn owned, void *ctx)
{
    char path[PATH_MAX], text[64], name[256];
    size_t len = strlen(file);
    if (len <= 4 || len - 4 >= sizeof name || strcmp(file + len - 4, ".pid") != 0)
        return;
    memcpy(name, file, len - 4);
    name[len - 4] = '\0';
    int n = snprintf(path, sizeof path, "%s/%s", task_dir, file);
    if (n < 0 || (size_t)n >= sizeof path || procfs_read_file(path, text, sizeof text) <= 0)
        return;
    long pid = 0;
    uint64_t ticks = 0;
    if (sscanf(text, "%ld %" SCNu64, &pid, &ticks) != 2 || pid <= 1 ||
        !runner_is_ours((pid_t)pid, ticks) || owned(ctx, task_id, name, (pid_t)pid))
        return;
    log_warn("runner: process %ld (task %s, container %s) belongs to no task gantry-core knows: "
             "killed",
             pid, task_id, name);
    runner_signal((pid_t)pid, SIGKILL);
}

int runner_kill_orphans(const char *run_dir, runner_owned_fn owned, void *ctx)
{
    char tasks_dir[PATH_MAX];
    snprintf(tasks_dir, sizeof tasks_dir, "%s/tasks", run_dir);
    DIR *d = opendir(tasks_dir);
    if (!d)
        return 0;
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!valid_component(e->d_name))
            continue;
        char task_dir[PATH_MAX];
        int n = snprintf(task_dir, sizeof task_dir, "%s/%s", tasks_dir, e->d_name);
        DIR *td = n > 0 && (size_t)n < sizeof task_dir ? opendir(task_dir) : NULL;
        if (!td)
            continue;
        struct dirent *f;
        while ((f = readdir(td)))
            kill_if_orphan(task_dir, e->d_name, f->d_name, owned, ctx);
        closedir(td);
        seen++;
    }
    closedir(d);
    return seen;
}
