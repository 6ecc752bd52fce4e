#include "cli/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/output.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "config/values.h"

extern char **environ;

/* The readiness pipe is always this fd in the child, whatever number it had in gantry. */
enum { CHILD_READY_FD = 3, READY_LINE_MAX = 1024 };

struct child {
    struct ev_loop *loop;
    struct child_spec spec;
    const struct child_policy *policy;
    const struct child_hooks *hooks;
    void *ctx;

    pid_t pid, last_pid;
    int status; /* wait status of the last process */
    int64_t started_ms;
    int64_t backoff_ms; /* the next restart delay; 0: none yet */
    bool ever_ready;
    bool stopping; /* a stop was asked for this process */
    bool killed;   /* SIGKILL was sent to this process */

    int out_fd, ready_fd;
    ev_io out_w, ready_w;
    ev_child exit_w;
    ev_timer ready_timer, probe_timer, stop_timer, restart_timer;
    struct output output;

    char ready_line[READY_LINE_MAX];
    size_t ready_len;
    char addr_text[READY_LINE_MAX];
    const char *addrs[CHILD_MAX_ADDRS];
    size_t n_addrs;
};

void child_spec_arg(struct child_spec *s, const char *arg)
{
    if (!arg || s->argc == CHILD_MAX_ARGS) {
        s->overflow = true;
        return;
    }
    s->argv[s->argc++] = arg;
}

void child_spec_env(struct child_spec *s, const char *assignment)
{
    if (!assignment || s->envc == CHILD_MAX_ENV) {
        s->overflow = true;
        return;
    }
    s->env[s->envc++] = assignment;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* --- the forked side: only what is safe between fork and exec --- */

static void reset_signals(void)
{
    /* Dispositions set to ignore survive exec, and so does the mask: libev blocks the signals it
     * watches through signalfd, and a redis-server started with SIGTERM blocked never stops. */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
}

static void mark_cloexec_from(int first)
{
    if (close_range((unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = first; fd < max; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static _Noreturn void exec_failed(int err_fd)
{
    int err = errno;
    ssize_t ignored = write(err_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
}

static _Noreturn void exec_child(const struct child *c, char **envp, int devnull, int out_w,
                                 int ready_w, int err_w, pid_t parent)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    reset_signals();
    /* If gantry dies, even by SIGKILL, the kernel sends this child SIGTERM: nothing it started
     * outlives it. The getppid() check closes the race where gantry died before the prctl. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    /* Its own process group: a stop reaches whatever it forks, and the terminal's Ctrl-C does not
     * (gantry stops its children itself, in order). */
    setpgid(0, 0);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    /* The dup2s below overwrite fds 0 to 3: the error pipe must not be one of them. */
    int moved = fcntl(err_w, F_DUPFD_CLOEXEC, CHILD_READY_FD + 1);
    if (moved >= 0)
        err_w = moved;
    if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
        dup2(out_w, STDERR_FILENO) < 0)
        exec_failed(err_w);
    if (ready_w == CHILD_READY_FD)
        fcntl(ready_w, F_SETFD, 0); /* dup2 onto itself would leave close-on-exec set */
    else if (ready_w >= 0 && dup2(ready_w, CHILD_READY_FD) < 0)
        exec_failed(err_w);
    /* Whatever gantry inherited (a caller's readiness pipe, say) is not the child's business. */
    mark_cloexec_from(ready_w >= 0 ? CHILD_READY_FD + 1 : CHILD_READY_FD);
    execvpe(c->spec.argv[0], (char *const *)c->spec.argv, envp);
    exec_failed(err_w);
}

/* --- the gantry side --- */

static bool env_overridden(const struct child *c, const char *entry)
{
    /* NOTIFY_SOCKET: a child's READY=1 would tell systemd gantry is up before it is. */
    static const char *const dropped[] = {"GANTRY_READY_FD=", "NOTIFY_SOCKET="};
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (strncmp(entry, dropped[i], strlen(dropped[i])) == 0)
            return true;
    for (size_t i = 0; i < c->spec.envc; i++) {
        const char *eq = strchr(c->spec.env[i], '=');
        size_t n = eq ? (size_t)(eq - c->spec.env[i]) + 1 : strlen(c->spec.env[i]);
        if (strncmp(entry, c->spec.env[i], n) == 0)
            return true;
    }
    return false;
}

/* Built for each start, since gantry's own environment may have changed meanwhile. */
static char **build_env(const struct child *c, bool ready_fd)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + c->spec.envc + 2) * sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!env_overridden(c, environ[i]))
            env[k++] = environ[i];
    for (size_t i = 0; i < c->spec.envc; i++)
        env[k++] = (char *)c->spec.env[i];
    if (ready_fd)
        env[k++] = (char *)"GANTRY_READY_FD=3";
    env[k] = NULL;
    return env;
}

static void describe_exec_error(const struct child *c, int err, char *out, size_t size)
{
    const char *program = c->spec.argv[0];
    const char *base = strrchr(program, '/') ? strrchr(program, '/') + 1 : program;
    const char *why = err == ENOENT && !strchr(program, '/') ? "not found in PATH" : strerror(err);
    snprintf(out, size, "cannot run %s '%s': %s%s%s%s", base, program, why,
             c->spec.hint ? " (" : "", c->spec.hint ? c->spec.hint : "", c->spec.hint ? ")" : "");
}

/* Blocks until the child has exec'd (the close-on-exec pipe reads EOF) or failed to (it writes its
 * errno): a program that cannot run is reported as such, not as a mysterious exit 127. */
static int read_exec_error(int fd)
{
    int err = 0;
    ssize_t n;
    do
        n = read(fd, &err, sizeof err);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof err ? err : 0;
}

static void on_output(struct ev_loop *loop, ev_io *w, int revents);
static void on_ready_pipe(struct ev_loop *loop, ev_io *w, int revents);
static void on_exit_status(struct ev_loop *loop, ev_child *w, int revents);

static void watch_process(struct child *c, pid_t pid, int out_fd, int ready_fd)
{
    c->pid = c->last_pid = pid;
    c->started_ms = clock_mono_ms();
    c->stopping = c->killed = false;
    c->n_addrs = c->ready_len = 0;
    c->out_fd = out_fd;
    c->ready_fd = ready_fd;
    net_set_nonblocking(out_fd);
    ev_io_set(&c->out_w, out_fd, EV_READ);
    ev_io_start(c->loop, &c->out_w);
    if (ready_fd >= 0) {
        net_set_nonblocking(ready_fd);
        ev_io_set(&c->ready_w, ready_fd, EV_READ);
        ev_io_start(c->loop, &c->ready_w);
    }
    ev_child_set(&c->exit_w, pid, 0);
    ev_child_start(c->loop, &c->exit_w);
    ev_now_update(c->loop); /* the wait for exec may have taken a while */
    ev_timer_set(&c->ready_timer, (double)c->policy->ready_timeout_ms / 1000.0, 0.);
    ev_timer_start(c->loop, &c->ready_timer);
    if (c->spec.probe)
        ev_timer_again(c->loop, &c->probe_timer);
}

int child_start(struct child *c, char *err, size_t errlen)
{
    int out[2] = {-1, -1}, ready[2] = {-1, -1}, exec_err[2] = {-1, -1};
    int devnull = -1;
    char **envp = NULL;
    pid_t pid = -1;
    pid_t parent = getpid();
    if (c->spec.overflow) {
        snprintf(err, errlen, "cannot run %s: too many arguments", c->spec.name);
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) < 0 || (!c->spec.probe && pipe2(ready, O_CLOEXEC) < 0) ||
        pipe2(exec_err, O_CLOEXEC) < 0 || (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
        !(envp = build_env(c, ready[1] >= 0)) || (pid = fork()) < 0) {
        snprintf(err, errlen, "cannot start %s: %s", c->spec.name, strerror(errno));
        goto fail;
    }
    if (pid == 0)
        exec_child(c, envp, devnull, out[1], ready[1], exec_err[1], parent);
    free(envp);
    envp = NULL;
    close_fd(&devnull);
    close_fd(&out[1]);
    close_fd(&ready[1]);
    close_fd(&exec_err[1]);
    setpgid(pid, pid); /* as the child does: a stop right after fork must reach the group */
    int child_errno = read_exec_error(exec_err[0]);
    close_fd(&exec_err[0]);
    if (child_errno) {
        waitpid(pid, NULL, 0); /* before the loop runs: libev never sees this one */
        describe_exec_error(c, child_errno, err, errlen);
        goto fail;
    }
    log_debug("started %s (pid %d): %s", c->spec.name, (int)pid, c->spec.argv[0]);
    watch_process(c, pid, out[0], ready[0]);
    return 0;
fail:
    free(envp);
    close_fd(&devnull);
    for (int i = 0; i < 2; i++) {
        close_fd(&out[i]);
        close_fd(&ready[i]);
        close_fd(&exec_err[i]);
    }
    return -1;
}

enum read_result { READ_DATA, READ_EMPTY, READ_EOF };

/* Reads one chunk; at end of file (or an error, which ends the stream too) closes the pipe. */
static enum read_result read_output(struct child *c)
{
    char chunk[16384];
    ssize_t n = read(c->out_fd, chunk, sizeof chunk);
    if (n > 0) {
        output_feed(&c->output, chunk, (size_t)n);
        return READ_DATA;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return READ_EMPTY;
    ev_io_stop(c->loop, &c->out_w);
    close_fd(&c->out_fd);
    output_flush(&c->output);
    return READ_EOF;
}

/* Reads what the child has written so far, without waiting for more; bounded, since a grandchild
 * holding the pipe may keep writing. */
static void drain_output(struct child *c)
{
    for (int i = 0; i < 64 && c->out_fd >= 0 && read_output(c) == READ_DATA; i++)
        ;
}

static void on_output(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    read_output(w->data);
}

static void stop_ready_pipe(struct child *c)
{
    ev_io_stop(c->loop, &c->ready_w);
    close_fd(&c->ready_fd);
}

static void mark_ready(struct child *c, const char *addrs)
{
    snprintf(c->addr_text, sizeof c->addr_text, "%s", addrs);
    c->n_addrs = 0;
    char *save = NULL;
    for (char *a = strtok_r(c->addr_text, " \t\r\n", &save); a && c->n_addrs < CHILD_MAX_ADDRS;
         a = strtok_r(NULL, " \t\r\n", &save))
        c->addrs[c->n_addrs++] = a;
    c->ever_ready = true;
    ev_timer_stop(c->loop, &c->ready_timer);
    drain_output(c); /* its lines up to readiness come before the news that it is ready */
    ev_timer_stop(c->loop, &c->probe_timer);
    c->hooks->on_ready(c, c->ctx);
}

static void on_ready_pipe(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct child *c = w->data;
    size_t room = sizeof c->ready_line - 1 - c->ready_len;
    ssize_t n = read(c->ready_fd, c->ready_line + c->ready_len, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* closed without a line: its exit or the ready timeout will tell */
        stop_ready_pipe(c);
        return;
    }
    c->ready_len += (size_t)n;
    c->ready_line[c->ready_len] = '\0';
    char *nl = strchr(c->ready_line, '\n');
    if (!nl && c->ready_len < sizeof c->ready_line - 1)
        return;
    stop_ready_pipe(c);
    if (strncmp(c->ready_line, "READY", 5) != 0) {
        log_warn("%s wrote '%.40s' on its readiness pipe (expected READY addr...)", c->spec.name,
                 c->ready_line);
        return;
    }
    if (nl)
        *nl = '\0';
    mark_ready(c, c->ready_line + 5);
}

static void on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct child *c = w->data;
    char addr[NET_ADDR_TEXT_MAX + 8];
    if (c->spec.probe(c->spec.probe_arg, addr, sizeof addr)) {
        mark_ready(c, addr);
        return;
    }
    ev_timer_again(c->loop, &c->probe_timer);
}

static void on_ready_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct child *c = w->data;
    c->hooks->on_ready_timeout(c, c->ctx);
}

static void on_exit_status(struct ev_loop *loop, ev_child *w, int revents)
{
    (void)revents;
    struct child *c = w->data;
    ev_child_stop(loop, w);
    ev_timer_stop(loop, &c->ready_timer);
    ev_timer_stop(loop, &c->probe_timer);
    ev_timer_stop(loop, &c->stop_timer);
    c->status = w->rstatus;
    c->pid = 0;
    /* Everything it wrote before exiting is in the pipe now: show it before reporting the exit,
     * the last lines usually say why. A grandchild may keep the pipe open: drain, do not wait. */
    drain_output(c);
    if (c->out_fd >= 0) {
        ev_io_stop(loop, &c->out_w);
        close_fd(&c->out_fd);
        output_flush(&c->output);
    }
    stop_ready_pipe(c);
    c->hooks->on_exit(c, c->ctx);
}

static void kill_group(const struct child *c, int sig)
{
    if (c->pid <= 0) /* kill(-0) would signal gantry's own process group */
        return;
    /* The group is the pid (see exec_child); a child that moved elsewhere still gets it. */
    if (kill(-c->pid, sig) < 0)
        kill(c->pid, sig);
}

static void on_stop_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct child *c = w->data;
    char limit[32];
    log_warn("%s (pid %d) still running %s after SIGTERM; sending SIGKILL", c->spec.name,
             (int)c->pid, value_format_duration(c->policy->stop_timeout_ms, limit, sizeof limit));
    c->killed = true;
    kill_group(c, SIGKILL);
}

void child_cancel_restart(struct child *c)
{
    ev_timer_stop(c->loop, &c->restart_timer);
}

bool child_stop(struct child *c, bool hurry)
{
    child_cancel_restart(c);
    if (!c->pid)
        return true;
    ev_timer_stop(c->loop, &c->ready_timer); /* whether it gets ready no longer matters */
    ev_timer_stop(c->loop, &c->probe_timer);
    if (hurry && !c->killed) {
        ev_timer_stop(c->loop, &c->stop_timer);
        c->stopping = c->killed = true;
        kill_group(c, SIGKILL);
        return false;
    }
    if (c->stopping)
        return false;
    c->stopping = true;
    kill_group(c, SIGTERM);
    ev_timer_set(&c->stop_timer, (double)c->policy->stop_timeout_ms / 1000.0, 0.);
    ev_timer_start(c->loop, &c->stop_timer);
    return false;
}

/* Arms the restart timer; returns the delay. The backoff doubles per crash, and starts over once
 * the program had run stably (10 times its backoff, at most SUPERVISE_STABLE_MAX_MS). */
static int64_t arm_restart(struct child *c, int64_t ran_ms)
{
    const struct child_policy *p = c->policy;
    int64_t backoff = c->backoff_ms ? c->backoff_ms : p->backoff_min_ms;
    int64_t stable_ms =
        backoff * 10 < SUPERVISE_STABLE_MAX_MS ? backoff * 10 : SUPERVISE_STABLE_MAX_MS;
    if (ran_ms >= stable_ms)
        backoff = p->backoff_min_ms; /* it had recovered: a new crash, not the same one again */
    c->backoff_ms = backoff * 2 < p->backoff_max_ms ? backoff * 2 : p->backoff_max_ms;
    ev_timer_set(&c->restart_timer, (double)backoff / 1000.0, 0.);
    ev_timer_start(c->loop, &c->restart_timer);
    return backoff;
}

static void on_restart_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct child *c = w->data;
    char err[512], delay[32];
    if (child_start(c, err, sizeof err) < 0) {
        /* The binary may be being rebuilt: keep trying, at the backoff's pace. */
        log_error("%s; trying again in %s", err,
                  value_format_duration(arm_restart(c, 0), delay, sizeof delay));
        return;
    }
    log_info("restarted %s (pid %d)", c->spec.name, (int)c->pid);
}

void child_restart_later(struct child *c)
{
    int64_t ran_ms = clock_mono_ms() - c->started_ms;
    char how[96], ran[32], delay[32];
    child_exit_text(c, how, sizeof how);
    log_warn("%s (pid %d) %s after %s; restarting it in %s", c->spec.name, (int)c->last_pid, how,
             value_format_duration(ran_ms, ran, sizeof ran),
             value_format_duration(arm_restart(c, ran_ms), delay, sizeof delay));
}

struct child *child_new(struct ev_loop *loop, const struct child_spec *spec,
                        const struct child_policy *policy, const struct child_hooks *hooks,
                        void *ctx)
{
    struct child *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->spec = *spec;
    c->policy = policy;
    c->hooks = hooks;
    c->ctx = ctx;
    c->out_fd = c->ready_fd = -1;
    output_init(&c->output, c->spec.name, policy->prefix_width, STDOUT_FILENO);
    ev_init(&c->out_w, on_output);
    ev_init(&c->ready_w, on_ready_pipe);
    ev_init(&c->exit_w, on_exit_status);
    ev_init(&c->ready_timer, on_ready_timeout);
    ev_init(&c->probe_timer, on_probe);
    c->probe_timer.repeat = SUPERVISE_PROBE_MS / 1000.0;
    ev_init(&c->stop_timer, on_stop_timeout);
    ev_init(&c->restart_timer, on_restart_timer);
    c->out_w.data = c->ready_w.data = c->exit_w.data = c;
    c->ready_timer.data = c->probe_timer.data = c->stop_timer.data = c->restart_timer.data = c;
    return c;
}

void child_free(struct child *c)
{
    if (!c)
        return;
    ev_io_stop(c->loop, &c->out_w);
    ev_child_stop(c->loop, &c->exit_w);
    ev_timer_stop(c->loop, &c->ready_timer);
    ev_timer_stop(c->loop, &c->probe_timer);
    ev_timer_stop(c->loop, &c->stop_timer);
    ev_timer_stop(c->loop, &c->restart_timer);
    stop_ready_pipe(c);
    close_fd(&c->out_fd);
    free(c);
}

const char *child_name(const struct child *c)
{
    return c->spec.name;
}

pid_t child_pid(const struct child *c)
{
    return c->pid;
}

bool child_ever_ready(const struct child *c)
{
    return c->ever_ready;
}

size_t child_addrs(const struct child *c, const char *const **addrs)
{
    *addrs = c->addrs;
    return c->n_addrs;
}

const char *child_exit_text(const struct child *c, char *out, size_t size)
{
    int st = c->status;
    if (WIFEXITED(st))
        snprintf(out, size, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, size, "was killed by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
                 WCOREDUMP(st) ? ", core dumped" : "");
    else
        snprintf(out, size, "ended with wait status %#x", (unsigned)st);
    return out;
}

bool child_exit_clean(const struct child *c)
{
    if (WIFEXITED(c->status))
        return WEXITSTATUS(c->status) == 0;
    /* Dying of the SIGTERM it was sent is a clean stop for a program without a handler. */
    return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGTERM && c->stopping && !c->killed;
}

size_t child_print_tail(const struct child *c, const char *header, FILE *out)
{
    return output_print_tail(&c->output, header, out);
}

void supervise_init(void)
{
    /* A pipe created while fd 0, 1 or 2 is closed would take that number, and the child's dup2s
     * onto 0 to 2 would then clobber it: make sure all three are open first. */
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int null = open("/dev/null", O_RDWR);
        if (null >= 0 && null != fd) {
            dup2(null, fd);
            close(null);
        }
    }
}
