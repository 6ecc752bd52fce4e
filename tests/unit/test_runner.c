/* The PROCESS runner against real processes (/bin/sh): process groups, log files, environment
 * and PATH, working directory, signals reaching grandchildren, exec failures that leave no child,
 * start times, inherited descriptors and signal state, rlimits without cgroups, and the cgroup
 * files when this machine has cgroups (those tests skip, saying why, when it has none). Every
 * wait polls with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "core/runner.h"

enum { DEADLINE_MS = 10000, MAX_TRACKED = 16 };

struct fixture {
    struct runner r;
    char tmp[64];
    pid_t tracked[MAX_TRACKED]; /* process groups to kill and reap whatever the test's outcome */
    int n_tracked;
    char task_ids[MAX_TRACKED][64]; /* cgroups to remove after that */
    int n_tasks;
};

/* ---- Helpers ----------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_briefly(void)
{
    nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000}, NULL);
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < size);
}

/* The file's contents (at most size - 1 bytes); "" when it cannot be read. */
static void slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Polls path until it contains needle; fails the test at the deadline. */
static void wait_for_text(const char *path, const char *needle)
{
    char buf[4096];
    for (int64_t end = now_ms() + DEADLINE_MS; now_ms() < end; pause_briefly()) {
        slurp(path, buf, sizeof buf);
        if (strstr(buf, needle))
            return;
    }
    fail_msg("%s never contained '%s'; it holds: '%s'", path, needle, buf);
}

/* Reaps pid, waiting at most the deadline; returns its wait status. */
static int wait_exit(pid_t pid)
{
    for (int64_t end = now_ms() + DEADLINE_MS; now_ms() < end; pause_briefly()) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return status;
        assert_int_equal(got, 0);
    }
    fail_msg("pid %ld did not exit", (long)pid);
    return -1;
}

/* Gone, or a zombie that is not ours to reap. */
static bool process_gone(pid_t pid)
{
    char path[64], buf[512];
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    slurp(path, buf, sizeof buf);
    const char *p = strrchr(buf, ')');
    return !p || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

static void wait_gone(pid_t pid)
{
    for (int64_t end = now_ms() + DEADLINE_MS; now_ms() < end; pause_briefly())
        if (process_gone(pid))
            return;
    fail_msg("pid %ld is still running", (long)pid);
}

static void track(struct fixture *fx, const struct runner_container *c, int n)
{
    for (int i = 0; i < n; i++) {
        assert_true(fx->n_tracked < MAX_TRACKED);
        fx->tracked[fx->n_tracked++] = c[i].pid;
    }
}

/* A task id for name, unique to this process: the cgroup bases are shared with other runs of
 * this test (release and asan at once). Its cgroup is removed at teardown. */
static const char *task_id_for(struct fixture *fx, const char *name)
{
    assert_true(fx->n_tasks < MAX_TRACKED);
    char *id = fx->task_ids[fx->n_tasks++];
    snprintf(id, sizeof fx->task_ids[0], "%s-%ld", name, (long)getpid());
    return id;
}

/* Starts the task tmp/TASK_ID; fails the test with the runner's reason if it cannot. */
static void start_task(struct fixture *fx, const char *task_id, const struct runner_limits *lim,
                       struct runner_container *c, int n, char *task_dir, size_t dir_size)
{
    static const struct runner_limits none;
    char why[512] = "";
    path_in(task_dir, dir_size, fx->tmp, task_id);
    if (runner_start(&fx->r, task_id, task_dir, lim ? lim : &none, c, n, why, sizeof why) != 0)
        fail_msg("runner_start %s: %s", task_id, why);
    track(fx, c, n);
}

/* The pid a container wrote (with a newline) to its work directory's file name. */
static pid_t read_pid_file(const char *task_dir, const char *name)
{
    char path[PATH_MAX + 64], text[64];
    snprintf(path, sizeof path, "%s/work/%s", task_dir, name);
    wait_for_text(path, "\n");
    slurp(path, text, sizeof text);
    pid_t pid = (pid_t)atol(text);
    assert_true(pid > 0);
    return pid;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char *echo_argv[] = {"sh", "-c", "echo out; echo err >&2; sleep 30", NULL};

static char *test_env[] = {"FOO=bar baz", "PATH=/usr/local/bin:/usr/bin:/bin", NULL};

/* ---- Fixtures ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->tmp, sizeof fx->tmp, "/tmp/gantry-test-runner-XXXXXX");
    if (!mkdtemp(fx->tmp)) {
        free(fx);
        return -1;
    }
    runner_init(&fx->r, true);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < fx->n_tracked; i++) {
        if (fx->tracked[i] <= 0)
            continue;
        kill(-fx->tracked[i], SIGKILL);
        waitpid(fx->tracked[i], NULL, 0);
    }
    for (int i = 0; i < fx->n_tasks; i++)
        runner_task_done(&fx->r, fx->task_ids[i]);
    nftw(fx->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    /* The bases are shared with other runs; one still in use stays. */
    rmdir(fx->r.v2_base);
    rmdir(fx->r.v1_cpu_base);
    rmdir(fx->r.v1_mem_base);
    free(fx);
    return 0;
}

static struct runner_container container(const char *name, char **argv, char **envp)
{
    return (struct runner_container){.name = name, .argv = argv, .envp = envp};
}

/* ---- Tests --------------------------------------------------------------------------------- */

static void test_two_containers_groups_and_logs(void **state)
{
    struct fixture *fx = *state;
    const char *id = task_id_for(fx, "t-two");
    struct runner_container c[2] = {container("a", echo_argv, test_env),
                                    container("b", echo_argv, test_env)};
    char dir[PATH_MAX], log[PATH_MAX + 8];
    start_task(fx, id, NULL, c, 2, dir, sizeof dir);
    assert_true(c[0].pid > 0 && c[1].pid > 0);
    assert_int_not_equal(c[0].pid, c[1].pid);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kill(c[i].pid, 0), 0);
        assert_int_equal(getpgid(c[i].pid), c[i].pid);
        assert_true(c[i].start_ticks > 0);
        assert_true(c[i].start_ticks == runner_start_ticks(c[i].pid));
        snprintf(log, sizeof log, "%s/%s.log", dir, c[i].name);
        wait_for_text(log, "out\n");
        wait_for_text(log, "err\n");
    }
    for (int i = 0; i < 2; i++) {
        runner_signal(c[i].pid, SIGTERM);
        int status = wait_exit(c[i].pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        assert_true(runner_start_ticks(c[i].pid) == 0);
    }
    runner_task_done(&fx->r, id);
}

/* The environment is the container's, PATH included, and so is the working directory. */
static void test_environment_path_and_workdir(void **state)
{
    struct fixture *fx = *state;
    const char *id = task_id_for(fx, "t-env");
    char bin[PATH_MAX], script[PATH_MAX + 16], path_var[PATH_MAX + 32];
    path_in(bin, sizeof bin, fx->tmp, "bin");
    assert_int_equal(mkdir(bin, 0755), 0);
    snprintf(script, sizeof script, "%s/gantry-hello", bin);
    FILE *f = fopen(script, "we");
    assert_non_null(f);
    fputs("#!/bin/sh\necho \"FOO=$FOO\"\npwd\n", f);
    fclose(f);
    assert_int_equal(chmod(script, 0755), 0);
    snprintf(path_var, sizeof path_var, "PATH=%s:/usr/bin:/bin", bin);
    char *env[] = {"FOO=bar baz", path_var, NULL};
    char *argv[] = {"gantry-hello", NULL};
    struct runner_container c = container("env", argv, env);
    char dir[PATH_MAX], log[PATH_MAX + 16], want[PATH_MAX + 16], real[PATH_MAX];
    start_task(fx, id, NULL, &c, 1, dir, sizeof dir);
    assert_int_equal(wait_exit(c.pid), 0);
    snprintf(log, sizeof log, "%s/env.log", dir);
    wait_for_text(log, "FOO=bar baz\n");
    snprintf(want, sizeof want, "%s/work", dir);
    assert_non_null(realpath(want, real));
    snprintf(want, sizeof want, "%s\n", real);
    wait_for_text(log, want);
}

/* SIGTERM reaches the container's child too, even though the daemon ignores and blocks it. */
static void test_signal_reaches_grandchild(void **state)
{
    struct fixture *fx = *state;
    const char *id = task_id_for(fx, "t-gc");
    char *argv[] = {"sh", "-c", "sleep 100 & echo $! > gc.pid; wait", NULL};
    struct runner_container c = container("gc", argv, test_env);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_action;
    sigset_t term, old_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaction(SIGTERM, &ign, &old_action);
    sigprocmask(SIG_BLOCK, &term, &old_mask);
    char dir[PATH_MAX];
    start_task(fx, id, NULL, &c, 1, dir, sizeof dir);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGTERM, &old_action, NULL);

    pid_t gc = read_pid_file(dir, "gc.pid");
    assert_int_equal(getpgid(gc), c.pid);
    runner_signal(c.pid, SIGTERM);
    int status = wait_exit(c.pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    wait_gone(gc);
    runner_signal(0, SIGTERM); /* a no-op, not a signal to our own group */
}

/* A container never sees the daemon's descriptors. */
static void test_descriptors_not_inherited(void **state)
{
    struct fixture *fx = *state;
    const char *id = task_id_for(fx, "t-fd");
    /* Deliberately without close-on-exec, and above stdio even if the test runs with one closed. */
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    int leak = fcntl(fd, F_DUPFD, 10);
    close(fd);
    assert_true(leak >= 10);
    char script[128];
    snprintf(script, sizeof script,
             "if [ -e /proc/$$/fd/%d ]; then echo leaked; else echo clean; fi", leak);
    char *argv[] = {"sh", "-c", script, NULL};
    struct runner_container c = container("fd", argv, test_env);
    char dir[PATH_MAX], log[PATH_MAX + 16];
    start_task(fx, id, NULL, &c, 1, dir, sizeof dir);
    close(leak);
    assert_int_equal(wait_exit(c.pid), 0);
    snprintf(log, sizeof log, "%s/fd.log", dir);
    wait_for_text(log, "clean\n");
}

static void assert_exec_failure(struct fixture *fx, const char *name, char **argv, const char *want)
{
    const char *task_id = task_id_for(fx, name);
    char dir[PATH_MAX], why[512] = "";
    struct runner_container c[2] = {container("ok", echo_argv, test_env),
                                    container("bad", argv, test_env)};
    static const struct runner_limits lim = {.cpu_units = 256, .memory_bytes = 64 << 20};
    path_in(dir, sizeof dir, fx->tmp, task_id);
    assert_int_equal(runner_start(&fx->r, task_id, dir, &lim, c, 2, why, sizeof why), -1);
    if (!strstr(why, want))
        fail_msg("why: '%s', want '%s'", why, want);
    assert_int_equal(c[0].pid, 0);
    assert_int_equal(c[1].pid, 0);
    /* Neither the started container nor the failed one is left running or unreaped. */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    char cg[PATH_MAX];
    const char *base = fx->r.mode == RUNNER_CGROUP_V2 ? fx->r.v2_base : fx->r.v1_cpu_base;
    if (fx->r.mode != RUNNER_CGROUP_NONE) {
        path_in(cg, sizeof cg, base, task_id);
        assert_int_equal(access(cg, F_OK), -1);
    }
}

static void test_exec_failure(void **state)
{
    struct fixture *fx = *state;
    char *missing[] = {"gantry-no-such-program", NULL};
    assert_exec_failure(fx, "t-missing", missing,
                        "container bad: cannot execute 'gantry-no-such-program': "
                        "No such file or directory");
    char *no_dir[] = {"/nonexistent/prog", NULL};
    assert_exec_failure(fx, "t-nodir", no_dir,
                        "cannot execute '/nonexistent/prog': No such file or directory");
    char plain[PATH_MAX];
    path_in(plain, sizeof plain, fx->tmp, "not-executable");
    int fd = open(plain, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    char *not_exec[] = {plain, NULL};
    assert_exec_failure(fx, "t-noexec", not_exec, "Permission denied");
}

static void test_invalid_requests(void **state)
{
    struct fixture *fx = *state;
    char why[256], dir[PATH_MAX];
    struct runner_container c = container("x", echo_argv, test_env);
    static const struct runner_limits lim;
    path_in(dir, sizeof dir, fx->tmp, "t-bad");
    assert_int_equal(runner_start(&fx->r, "../up", dir, &lim, &c, 1, why, sizeof why), -1);
    assert_non_null(strstr(why, "invalid task id"));
    assert_int_equal(runner_start(&fx->r, "t-bad", dir, &lim, &c, 0, why, sizeof why), -1);
    c.name = "a/b";
    assert_int_equal(runner_start(&fx->r, "t-bad", dir, &lim, &c, 1, why, sizeof why), -1);
    assert_non_null(strstr(why, "invalid container name"));
    char *empty[] = {NULL};
    c = container("x", empty, test_env);
    assert_int_equal(runner_start(&fx->r, "t-bad", dir, &lim, &c, 1, why, sizeof why), -1);
    assert_non_null(strstr(why, "has no command"));
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* The start time survives a command name holding spaces and parentheses. */
static void test_start_ticks(void **state)
{
    (void)state;
    assert_true(runner_start_ticks(getpid()) > 0);
    assert_true(runner_start_ticks(0) == 0);
    assert_true(runner_start_ticks(-1) == 0);
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        if (read(go[0], &c, 1) == 1 && prctl(PR_SET_NAME, "a) b ) (c") == 0 &&
            write(done[1], "x", 1) == 1)
            pause();
        _exit(1);
    }
    uint64_t before = runner_start_ticks(pid);
    char c = 'x';
    assert_int_equal(write(go[1], &c, 1), 1);
    assert_int_equal(read(done[0], &c, 1), 1);
    char path[64], stat_text[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    slurp(path, stat_text, sizeof stat_text);
    assert_non_null(strstr(stat_text, "(a) b ) (c)"));
    uint64_t after = runner_start_ticks(pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
    assert_true(before > 0);
    assert_true(before == after);
    assert_true(runner_start_ticks(pid) == 0);
}

static bool pid_listed(const char *file, pid_t pid)
{
    char buf[8192], want[32];
    slurp(file, buf, sizeof buf);
    snprintf(want, sizeof want, "%ld", (long)pid);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (strcmp(line, want) == 0)
            return true;
    return false;
}

static void assert_file_value(const char *dir, const char *file, const char *want)
{
    char path[PATH_MAX + 64], buf[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    slurp(path, buf, sizeof buf);
    buf[strcspn(buf, "\n")] = '\0';
    if (strcmp(buf, want) != 0)
        fail_msg("%s: '%s', want '%s'", path, buf, want);
}

static void test_cgroup_limits(void **state)
{
    struct fixture *fx = *state;
    const char *id = task_id_for(fx, "t-cg");
    if (fx->r.mode == RUNNER_CGROUP_NONE) {
        print_message("skipping: no cgroups here (%s)\n", fx->r.why_none);
        skip();
    }
    static const struct runner_limits lim = {.cpu_units = 512,
                                             .cpu_shares = 512,
                                             .memory_bytes = 64 << 20,
                                             .memory_soft_bytes = 32 << 20};
    /* The straggler leaves the container's process group, as a daemonising program would. */
    char *argv[] = {"sh", "-c", "setsid sleep 100 & echo $! > straggler.pid; sleep 30", NULL};
    struct runner_container c = container("cg", argv, test_env);
    char dir[PATH_MAX], cpu[PATH_MAX], mem[PATH_MAX], procs[PATH_MAX + 16];
    start_task(fx, id, &lim, &c, 1, dir, sizeof dir);
    bool v2 = fx->r.mode == RUNNER_CGROUP_V2;
    path_in(cpu, sizeof cpu, v2 ? fx->r.v2_base : fx->r.v1_cpu_base, id);
    path_in(mem, sizeof mem, v2 ? fx->r.v2_base : fx->r.v1_mem_base, id);
    if (v2) {
        assert_file_value(cpu, "cpu.max", "50000 100000");
        assert_file_value(cpu, "cpu.weight", "50");
        assert_file_value(mem, "memory.max", "67108864");
        assert_file_value(mem, "memory.low", "33554432");
    } else {
        assert_file_value(cpu, "cpu.cfs_period_us", "100000");
        assert_file_value(cpu, "cpu.cfs_quota_us", "50000");
        assert_file_value(cpu, "cpu.shares", "512");
        assert_file_value(mem, "memory.limit_in_bytes", "67108864");
        assert_file_value(mem, "memory.soft_limit_in_bytes", "33554432");
    }
    snprintf(procs, sizeof procs, "%s/cgroup.procs", cpu);
    assert_true(pid_listed(procs, c.pid));
    snprintf(procs, sizeof procs, "%s/cgroup.procs", mem);
    assert_true(pid_listed(procs, c.pid));

    pid_t straggler = read_pid_file(dir, "straggler.pid");
    for (int64_t end = now_ms() + DEADLINE_MS; getpgid(straggler) != straggler; pause_briefly())
        if (now_ms() > end)
            fail_msg("the straggler never left the container's process group");
    assert_true(pid_listed(procs, straggler));

    runner_signal(c.pid, SIGKILL);
    wait_exit(c.pid);
    assert_int_equal(kill(straggler, 0), 0); /* the group's signal missed it */
    runner_task_done(&fx->r, id);
    wait_gone(straggler);
    assert_int_equal(access(cpu, F_OK), -1);
    assert_int_equal(access(mem, F_OK), -1);
    runner_task_done(&fx->r, id); /* again: nothing left, nothing to complain about */
}

/* A quota below the kernel's 1 ms minimum is raised to it rather than refused. */
static void test_cgroup_tiny_quota(void **state)
{
    struct fixture *fx = *state;
    const char *id = task_id_for(fx, "t-tiny");
    if (fx->r.mode == RUNNER_CGROUP_NONE) {
        print_message("skipping: no cgroups here (%s)\n", fx->r.why_none);
        skip();
    }
    static const struct runner_limits lim = {.cpu_units = 1, .cpu_shares = 1};
    char *argv[] = {"true", NULL};
    struct runner_container c = container("tiny", argv, test_env);
    char dir[PATH_MAX], cpu[PATH_MAX];
    start_task(fx, id, &lim, &c, 1, dir, sizeof dir);
    bool v2 = fx->r.mode == RUNNER_CGROUP_V2;
    path_in(cpu, sizeof cpu, v2 ? fx->r.v2_base : fx->r.v1_cpu_base, id);
    assert_file_value(cpu, v2 ? "cpu.max" : "cpu.cfs_quota_us", v2 ? "1000 100000" : "1000");
    assert_file_value(cpu, v2 ? "cpu.weight" : "cpu.shares", v2 ? "1" : "2");
    assert_int_equal(wait_exit(c.pid), 0);
    runner_task_done(&fx->r, id);
    assert_int_equal(access(cpu, F_OK), -1);
}

/* Without cgroups the memory limit becomes each process's address-space limit. */
static void test_no_cgroups_uses_rlimit(void **state)
{
    struct fixture *fx = *state;
    struct runner none;
    runner_init(&none, false);
    assert_int_equal(none.mode, RUNNER_CGROUP_NONE);
    assert_true(none.why_none[0] != '\0');
    static const struct runner_limits lim = {.cpu_units = 512, .memory_bytes = 256 << 20};
    char *argv[] = {"sh", "-c", "grep 'Max address space' /proc/self/limits", NULL};
    struct runner_container c = container("rl", argv, test_env);
    char dir[PATH_MAX], log[PATH_MAX + 16], why[256];
    path_in(dir, sizeof dir, fx->tmp, "t-rl");
    if (runner_start(&none, "t-rl", dir, &lim, &c, 1, why, sizeof why) != 0)
        fail_msg("runner_start: %s", why);
    track(fx, &c, 1);
    assert_int_equal(wait_exit(c.pid), 0);
    snprintf(log, sizeof log, "%s/rl.log", dir);
    wait_for_text(log, "268435456");
    runner_task_done(&none, "t-rl");
}

int main(void)
{
    log_init("test_runner", LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_containers_groups_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_path_and_workdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_reaches_grandchild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptors_not_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_ticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_tiny_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cgroups_uses_rlimit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
