#include "cli/logs_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "common/daemon.h"
#include "config/config.h"

enum {
    EXIT_DONE = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    PREFIX_MIN = 4, /* shorter prefixes would match by accident */
    CHUNK = 64 * 1024,
    MATCHES_SHOWN = 5,
};

static const long long TAIL_MAX = 1000000000000LL;

static const char USAGE_EXTRA[] =
    "       gantry logs TASK [-c FILE]... [--container NAME] [--tail N]\n"
    "\nPrints a task's container logs: the files gantry-core appends each container's stdout\n"
    "and stderr to, core.run_dir/tasks/ID/NAME.log (core.run_dir from the -c files, default\n"
    "\"run\", relative to the current directory: run it where gantry-core runs, or pass the\n"
    "-c files gantry-core runs with). Neither Redis nor gantry-core is needed.\n"
    "TASK: the task's id, its ARN (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID) or a prefix of\n"
    "its id of at least 4 characters that names one task.\n"
    "With several containers, each file follows a line \"==> NAME <==\". A file is printed as it\n"
    "was when opened. Exit status: 0 done, 1 no such task or container, an ambiguous prefix or\n"
    "an unreadable file, 2 usage error.\n";

/* --- names --- */

struct names {
    char **v;
    size_t n, cap;
};

static int names_add(struct names *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strndup(s, len)))
        return -1;
    l->n++;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort(struct names *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, compare_names);
}

static bool names_has(const struct names *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

/* "a, b, c" then "and N more". */
static void names_print(const struct names *l, FILE *out)
{
    for (size_t i = 0; i < l->n && i < MATCHES_SHOWN; i++)
        fprintf(out, "%s%s", i ? ", " : "", l->v[i]);
    if (l->n > MATCHES_SHOWN)
        fprintf(out, " and %zu more", l->n - MATCHES_SHOWN);
}

static void names_free(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* --- which task --- */

/* What goes into a path: ids are gantry-core's hex, container names letters, digits, '-' and
 * '_'; anything else ('/', "..") could step out of the tasks directory. */
static bool id_text_valid(const char *s)
{
    if (!*s || strlen(s) > NAME_MAX)
        return false;
    for (; *s; s++)
        if (!(*s >= '0' && *s <= '9') && !(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
            *s != '-' && *s != '_')
            return false;
    return true;
}

/* The id (or prefix) TASK gives: itself, or the last element of a task ARN
 * (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID, or the older task/ID). NULL after printing why. */
static const char *task_id(const char *arg)
{
    const char *id = arg;
    if (strncmp(arg, "arn:", 4) == 0) {
        const char *p = arg;
        for (int colons = 0; p && colons < 5; colons++)
            p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
        if (!p || strncmp(p, "task/", 5) != 0) {
            fprintf(stderr,
                    "gantry logs: '%s' is not a task ARN (expected "
                    "arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID)\n",
                    arg);
            return NULL;
        }
        id = strrchr(p, '/') + 1;
    }
    if (!id_text_valid(id)) {
        fprintf(stderr, "gantry logs: '%s' is not a task id (hex digits, as gantry status shows)\n",
                arg);
        return NULL;
    }
    if (strlen(id) < PREFIX_MIN) {
        fprintf(stderr, "gantry logs: '%s' is too short: give at least %d characters of the id\n",
                id, PREFIX_MIN);
        return NULL;
    }
    return id;
}

/* The task directory named id, else the one whose name starts with it. */
static int find_task(const char *tasks_dir, const char *id, char *out, size_t size)
{
    DIR *d = opendir(tasks_dir);
    if (!d) {
        fprintf(stderr,
                "gantry logs: cannot read %s: %s (tasks live under core.run_dir: run this "
                "where gantry-core runs, or pass its -c file)\n",
                tasks_dir, strerror(errno));
        return EXIT_FAILED;
    }
    struct names matches = {0};
    size_t len = strlen(id);
    bool exact = false, oom = false;
    struct dirent *e;
    while (!exact && !oom && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, id, len) != 0)
            continue;
        exact = e->d_name[len] == '\0';
        oom = !exact && names_add(&matches, e->d_name, strlen(e->d_name)) < 0;
    }
    closedir(d);
    int status = EXIT_FAILED;
    if (oom) {
        fprintf(stderr, "gantry logs: out of memory\n");
    } else if (exact || matches.n == 1) {
        snprintf(out, size, "%s", exact ? id : matches.v[0]);
        status = EXIT_DONE;
    } else if (matches.n == 0) {
        fprintf(stderr, "gantry logs: no task matches '%s' in %s\n", id, tasks_dir);
    } else {
        names_sort(&matches);
        fprintf(stderr, "gantry logs: '%s' is ambiguous: it matches %zu tasks (", id, matches.n);
        names_print(&matches, stderr);
        fprintf(stderr, "); give more characters\n");
    }
    names_free(&matches);
    return status;
}

/* The containers that have a log file: NAME of every NAME.log, sorted. */
static int list_containers(const char *task_dir, struct names *out)
{
    DIR *d = opendir(task_dir);
    if (!d) {
        fprintf(stderr, "gantry logs: cannot read %s: %s\n", task_dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] != '.' && len > 4 && strcmp(e->d_name + len - 4, ".log") == 0)
            rc = names_add(out, e->d_name, len - 4);
    }
    closedir(d);
    if (rc < 0)
        fprintf(stderr, "gantry logs: out of memory\n");
    names_sort(out);
    return rc;
}

/* --- printing --- */

/* Exactly len bytes at off; -1 with errno (0: the file shrank meanwhile). */
static int read_at(int fd, char *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Where the last n lines of [0, end) begin, found by reading backwards chunk by chunk. A last
 * line without its newline counts, as tail(1) counts it. */
static int tail_start(int fd, off_t end, long long n, char *buf, off_t *start)
{
    *start = n == 0 ? end : 0;
    long long seen = 0;
    for (off_t pos = end; n > 0 && pos > 0;) {
        size_t len = pos < CHUNK ? (size_t)pos : CHUNK;
        pos -= (off_t)len;
        if (read_at(fd, buf, len, pos) < 0)
            return -1;
        for (size_t i = len; i-- > 0;) {
            if (buf[i] != '\n' || pos + (off_t)i == end - 1)
                continue;
            if (++seen == n) {
                *start = pos + (off_t)i + 1;
                return 0;
            }
        }
    }
    return 0;
}

/* Streams [from, to) to stdout; *last is the last byte written (to end a line before a header). */
static int copy_range(int fd, off_t from, off_t to, char *buf, char *last)
{
    while (from < to) {
        size_t len = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
        if (read_at(fd, buf, len, from) < 0)
            return -1;
        if (fwrite(buf, 1, len, stdout) != len)
            return -1;
        *last = buf[len - 1];
        from += (off_t)len;
    }
    return 0;
}

/* One log file, as it was when opened: a task still running keeps appending to it. */
static int print_log(const char *path, long long tail, char *buf, char *last)
{
    /* O_NONBLOCK: a FIFO planted there must not hang us; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        fprintf(stderr, "gantry logs: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "gantry logs: cannot read %s: not a regular file\n", path);
        close(fd);
        return -1;
    }
    off_t start = 0;
    int rc = tail >= 0 ? tail_start(fd, st.st_size, tail, buf, &start) : 0;
    if (rc == 0)
        rc = copy_range(fd, start, st.st_size, buf, last);
    if (rc < 0 && !ferror(stdout))
        fprintf(stderr, "gantry logs: cannot read %s: %s\n", path,
                errno ? strerror(errno) : "it was truncated while being read");
    close(fd);
    return rc;
}

static int print_logs(const char *task_dir, const struct names *containers, long long tail)
{
    char *buf = malloc(CHUNK);
    if (!buf) {
        fprintf(stderr, "gantry logs: out of memory\n");
        return EXIT_FAILED;
    }
    int status = EXIT_DONE;
    char last = '\n';
    for (size_t i = 0; i < containers->n && !ferror(stdout); i++) {
        if (containers->n > 1)
            printf("%s%s==> %s <==\n", last == '\n' ? "" : "\n", i ? "\n" : "", containers->v[i]);
        last = '\n';
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s.log", task_dir, containers->v[i]) >=
            (int)sizeof path) {
            fprintf(stderr, "gantry logs: %s/%s.log: the path is too long\n", task_dir,
                    containers->v[i]);
            status = EXIT_FAILED;
        } else if (print_log(path, tail, buf, &last) < 0) {
            status = EXIT_FAILED; /* as tail(1): the other files are still printed */
        }
    }
    free(buf);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gantry logs: cannot write the output: %s\n", strerror(errno));
        status = EXIT_FAILED;
    }
    return status;
}

/* --- the command --- */

struct options {
    const char *container;
    const char *tail;
};

static int usage_error(const char *what, const char *value)
{
    fprintf(stderr, "gantry logs: %s '%s' (see gantry logs --help)\n", what, value);
    return EXIT_USAGE;
}

static int parse_tail(const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno || n > TAIL_MAX)
        return -1;
    *out = n;
    return 0;
}

/* Which containers to print: every one with a log, or --container's. */
static int pick_containers(const char *task_dir, const char *task, const char *only,
                           struct names *out)
{
    if (list_containers(task_dir, out) < 0)
        return EXIT_FAILED;
    if (out->n == 0) {
        fprintf(stderr, "gantry logs: task %s has no container log yet\n", task);
        return EXIT_FAILED;
    }
    if (!only)
        return EXIT_DONE;
    if (!names_has(out, only)) {
        fprintf(stderr, "gantry logs: task %s has no container '%s' (containers: ", task, only);
        names_print(out, stderr);
        fprintf(stderr, ")\n");
        return EXIT_FAILED;
    }
    for (size_t i = 0; i < out->n; i++)
        free(out->v[i]);
    out->n = 0;
    return names_add(out, only, strlen(only)) < 0 ? EXIT_FAILED : EXIT_DONE;
}

static int run(const char *arg, const struct options *o, const struct daemon_args *args)
{
    long long tail = -1;
    if (o->tail && parse_tail(o->tail, &tail) < 0)
        return usage_error("--tail expects a number of lines, not", o->tail);
    if (o->container && !id_text_valid(o->container))
        return usage_error("--container expects a container name, not", o->container);
    const char *id = task_id(arg);
    if (!id)
        return EXIT_USAGE;
    struct gantry_config cfg;
    int status = config_daemon_start(&cfg, args, "gantry");
    if (status >= 0)
        return status;
    char tasks_dir[PATH_MAX], task[NAME_MAX + 1], task_dir[PATH_MAX + NAME_MAX + 2];
    snprintf(tasks_dir, sizeof tasks_dir, "%s/tasks", cfg.core.run_dir);
    status = find_task(tasks_dir, id, task, sizeof task);
    if (status == EXIT_DONE) {
        snprintf(task_dir, sizeof task_dir, "%s/%s", tasks_dir, task);
        struct names containers = {0};
        status = pick_containers(task_dir, task, o->container, &containers);
        if (status == EXIT_DONE)
            status = print_logs(task_dir, &containers, tail);
        names_free(&containers);
    }
    config_free(&cfg);
    return status;
}

static int on_option(void *ctx, const struct daemon_option *option, const char *arg)
{
    struct options *o = ctx;
    if (strcmp(option->name, "container") == 0)
        o->container = arg;
    else
        o->tail = arg;
    return 0;
}

/* TASK may come before the options (`gantry logs 3f2a --tail 20`). */
static const char *const VALUE_OPTIONS[] = {"-c",          "--config", "--log-level",
                                            "--container", "--tail",   NULL};

int logs_cmd_main(int argc, char **argv)
{
    static const struct daemon_option extra[] = {
        {"container", true, "--container NAME      only this container's log"},
        {"tail", true, "--tail N              only the last N lines of each log"},
        {NULL, false, NULL},
    };
    struct options o = {0};
    const struct daemon_usage usage = {
        .name = "gantry logs",
        .summary = "print a task's container logs",
        .extra = USAGE_EXTRA,
        .options = extra,
        .on_option = on_option,
        .ctx = &o,
    };
    char **opts = calloc((size_t)argc + 1, sizeof *opts);
    char **ops = calloc((size_t)argc + 1, sizeof *ops);
    int status = EXIT_FAILED, n_opts, n_ops;
    if (!opts || !ops) {
        fprintf(stderr, "gantry logs: out of memory\n");
    } else {
        cli_split_args(argc, argv, VALUE_OPTIONS, false, opts, &n_opts, ops, &n_ops);
        struct daemon_args args;
        status = daemon_args_parse(n_opts, opts, &usage, &args);
        if (status == DAEMON_ARGS_GO_ON && n_ops != 1) {
            fprintf(stderr, "gantry logs: %s (see gantry logs --help)\n",
                    n_ops ? "one task at a time" : "which task? gantry logs TASK");
            status = EXIT_USAGE;
        } else if (status == DAEMON_ARGS_GO_ON) {
            status = run(ops[0], &o, &args);
        }
    }
    free(opts);
    free(ops);
    return status;
}
