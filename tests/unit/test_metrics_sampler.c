/* gantry-metrics' pure parts: /proc/PID/stat with awkward command names, mountinfo lines and a
 * task's cgroup found from /proc/PID/cgroup (v1 split hierarchies, v1 cpu+cpuacct, v2, hybrid,
 * a task run without cgroups, paths that try to leave), flat keyed files, gantry-core's task
 * records (sound, not sampled, and every damaged shape; DOCKER tasks' containers by id), dockerd's
 * stats documents (v1, v2, no memory controller, a container not running, damaged) and their
 * times, ECS's cpu and memory forms, the report
 * (percentages, a task reserving no CPU, the service totals, a first sample without CPU), and
 * Prometheus label escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/cgroup.h"
#include "metrics/docker_stats.h"
#include "metrics/ecs_report.h"
#include "common/procfs.h"
#include "metrics/prom.h"
#include "metrics/task_list.h"

#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"

/* ---- /proc/PID/stat ------------------------------------------------------------------------ */

static void test_stat_parsing(void **state)
{
    (void)state;
    /* fields 3..24 after the name; utime 14, stime 15, cutime 16, cstime 17, starttime 22 */
    const char *text = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
                       "70 30 5 7 20 0 1 0 987654 12345678 250 18446744073709551615\n";
    struct proc_stat st;
    assert_int_equal(procfs_parse_stat(text, &st), 0);
    assert_int_equal(st.pgrp, 4242);
    assert_int_equal(st.cpu_ticks, 70 + 30 + 5 + 7);
    assert_int_equal(st.start_ticks, 987654);
    assert_true(st.rss_bytes == 250 * (uint64_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(procfs_parse_stat("12 (x) S 1 2 3", &st), -1);
    assert_int_equal(procfs_parse_stat("no parenthesis", &st), -1);
    assert_int_equal(procfs_parse_stat("1 (x)", &st), -1);
    assert_int_equal(procfs_ticks_to_ns(250, 100), 2500000000ull);
}

static void test_a_pid_is_verified_by_its_start_time(void **state)
{
    (void)state;
    struct proc_stat st;
    assert_int_equal(procfs_read_stat(getpid(), &st), 0);
    assert_true(st.start_ticks > 0);
    assert_false(procfs_is_container(getpid(), st.start_ticks + 1, NULL)); /* a reused pid */
    struct proc_stat again;
    assert_true(procfs_is_container(getpid(), st.start_ticks, &again));
    assert_int_equal(again.pgrp, getpgrp());
    assert_false(procfs_is_container(1, 1, NULL));
    assert_false(procfs_is_container(0, st.start_ticks, NULL));
}

/* ---- cgroups ------------------------------------------------------------------------------- */

static void add_mount(struct cg_mounts *m, const char *line)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", line);
    assert_int_equal(cg_mount_parse_line(copy, &m->items[m->n]), 1);
    m->n++;
}

static void test_mountinfo_lines(void **state)
{
    (void)state;
    struct cg_mount mt;
    char line[512];
    snprintf(line, sizeof line, "%s",
             "32 31 0:29 / /sys/fs/cgroup/cpu\\040x rw,relatime shared:5 - cgroup cgroup "
             "rw,cpu,cpuacct\n");
    assert_int_equal(cg_mount_parse_line(line, &mt), 1);
    assert_false(mt.v2);
    assert_string_equal(mt.point, "/sys/fs/cgroup/cpu x");
    assert_string_equal(mt.options, "rw,cpu,cpuacct");
    snprintf(line, sizeof line, "%s", "40 31 0:37 /a/b /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    assert_int_equal(cg_mount_parse_line(line, &mt), 1);
    assert_true(mt.v2);
    assert_string_equal(mt.root, "/a/b");
    snprintf(line, sizeof line, "%s", "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n");
    assert_int_equal(cg_mount_parse_line(line, &mt), 0);
    snprintf(line, sizeof line, "%s", "garbage\n");
    assert_int_equal(cg_mount_parse_line(line, &mt), -1);
}

static void test_task_cgroup_on_split_v1_hierarchies(void **state)
{
    (void)state;
    struct cg_mounts m = {0};
    add_mount(&m, "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu");
    add_mount(&m, "33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct");
    add_mount(&m, "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory");
    struct task_cg cg;
    const char *procs = "5:memory:/process_api/x/gantry/" ID_A "\n"
                        "2:cpuacct:/\n"
                        "1:cpu:/gantry/" ID_A "\n"
                        "0::/\n";
    assert_int_equal(cg_locate(&m, procs, ID_A, &cg), 0);
    assert_int_equal(cg.mode, CG_V1);
    assert_string_equal(cg.cpu_dir, "/sys/fs/cgroup/cpu/gantry/" ID_A);
    assert_string_equal(cg.mem_dir, "/sys/fs/cgroup/memory/process_api/x/gantry/" ID_A);
    assert_false(cg.cpuacct); /* no cumulative counter: the caller sums cgroup.procs */
    /* another task's cgroup, or gantry-core's own (a task run without cgroups): not this task */
    assert_int_equal(cg_locate(&m, procs, ID_B, &cg), -1);
    assert_int_equal(cg.mode, CG_NONE);
    assert_int_equal(cg_locate(&m, "1:cpu:/\n5:memory:/process_api/x\n", ID_A, &cg), -1);
    /* a path that climbs out of our namespace */
    assert_int_equal(cg_locate(&m, "1:cpu:/../../gantry/" ID_A "\n", ID_A, &cg), -1);
}

static void test_task_cgroup_on_v1_with_cpuacct_and_a_mounted_subtree(void **state)
{
    (void)state;
    struct cg_mounts m = {0};
    add_mount(&m, "32 31 0:29 /docker/c1 /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
                  "rw,cpu,cpuacct");
    add_mount(&m, "35 31 0:32 /docker/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory");
    struct task_cg cg;
    assert_int_equal(cg_locate(&m,
                               "4:cpu,cpuacct:/docker/c1/gantry/" ID_A "\n"
                               "3:memory:/docker/c1/gantry/" ID_A "\n",
                               ID_A, &cg),
                     0);
    assert_true(cg.cpuacct);
    assert_string_equal(cg.cpu_dir, "/sys/fs/cgroup/cpu,cpuacct/gantry/" ID_A);
    assert_string_equal(cg.mem_dir, "/sys/fs/cgroup/memory/gantry/" ID_A);
    /* outside the mounted subtree: no directory shows it */
    assert_int_equal(cg_locate(&m, "4:cpu,cpuacct:/docker/c10/gantry/" ID_A "\n", ID_A, &cg), -1);
}

static void test_task_cgroup_on_v2_and_hybrid(void **state)
{
    (void)state;
    struct cg_mounts m = {0};
    add_mount(&m, "40 31 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw");
    struct task_cg cg;
    assert_int_equal(cg_locate(&m, "0::/system.slice/x.service/gantry/" ID_A "\n", ID_A, &cg), 0);
    assert_int_equal(cg.mode, CG_V2);
    assert_string_equal(cg.cpu_dir, "/sys/fs/cgroup/system.slice/x.service/gantry/" ID_A);
    /* hybrid: the runner used v1; the unified hierarchy holds the process elsewhere */
    add_mount(&m, "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu");
    assert_int_equal(cg_locate(&m, "1:cpu:/gantry/" ID_A "\n0::/user.slice\n", ID_A, &cg), 0);
    assert_int_equal(cg.mode, CG_V1);
    assert_string_equal(cg.cpu_dir, "/sys/fs/cgroup/cpu/gantry/" ID_A);
    assert_string_equal(cg.mem_dir, "");
}

static void test_flat_keyed_files(void **state)
{
    (void)state;
    const char *stat = "cache 2093056\nrss 1769472\nrss_huge 0\ntotal_rss 4096\n";
    uint64_t v = 0;
    assert_true(cg_stat_value(stat, "rss", &v));
    assert_int_equal(v, 1769472);
    assert_true(cg_stat_value(stat, "total_rss", &v));
    assert_int_equal(v, 4096);
    assert_false(cg_stat_value(stat, "total", &v));
    assert_false(cg_stat_value("usage_usec x\n", "usage_usec", &v));
    assert_false(cg_stat_value("", "rss", &v));
}

/* ---- task records -------------------------------------------------------------------------- */

static const char *record(const char *status, const char *cpu, const char *rt)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "{\"lastStatus\":\"%s\",\"launchType\":\"PROCESS\",\"cpu\":%s,\"memory\":\"64\","
             "\"_gantry\":%s}",
             status, cpu, rt);
    return text;
}

#define RT_OK                                                                                      \
    "{\"service\":\"web\",\"processes\":[{\"name\":\"a\",\"pid\":4242,\"startTicks\":99,"          \
    "\"running\":true},{\"name\":\"b\",\"pid\":4243,\"startTicks\":99,\"running\":false}]}"

static enum task_parse_result parse(const char *cluster, const char *id, const char *json,
                                    struct ecs_task *t)
{
    return task_record_parse(cluster, id, json, strlen(json), t);
}

static void test_sound_records(void **state)
{
    (void)state;
    struct ecs_task t;
    assert_int_equal(parse("default", ID_A, record("RUNNING", "\"512\"", RT_OK), &t),
                     TASK_PARSE_OK);
    assert_string_equal(t.cluster, "default");
    assert_string_equal(t.service, "web");
    assert_string_equal(t.id, ID_A);
    assert_int_equal(t.cpu_units, 512);
    assert_int_equal(t.memory_mib, 64);
    assert_int_equal(t.n_procs, 1); /* the container that exited is left out */
    assert_int_equal(t.procs[0].pid, 4242);
    assert_int_equal(t.procs[0].start_ticks, 99);
    const char *run_task = record("RUNNING", "\"0\"", "{\"service\":\"\",\"processes\":[]}");
    assert_int_equal(parse("default", ID_A, run_task, &t), TASK_PARSE_OK);
    assert_string_equal(t.service, "");
    assert_int_equal(parse("default", ID_A, record("STOPPED", "\"512\"", RT_OK), &t),
                     TASK_PARSE_NOT_SAMPLED);
    const char *docker = "{\"lastStatus\":\"RUNNING\",\"launchType\":\"FARGATE\"}";
    assert_int_equal(parse("default", ID_A, docker, &t), TASK_PARSE_NOT_SAMPLED);
}

static void test_damaged_records(void **state)
{
    (void)state;
    struct ecs_task t;
    const char *damaged[] = {
        "{not json",
        "[1,2]",
        "{}",
        record("RUNNING", "512", RT_OK),                       /* cpu not a string */
        record("RUNNING", "\"lots\"", RT_OK),                  /* cpu not a number */
        record("RUNNING", "\"-5\"", RT_OK),                    /* negative */
        record("RUNNING", "\"1e40\"", RT_OK),                  /* absurd */
        record("RUNNING", "\"512\"", "\"x\""),                 /* _gantry not an object */
        record("RUNNING", "\"512\"", "{\"service\":\"web\"}"), /* no processes */
        record("RUNNING", "\"512\"", "{\"service\":7,\"processes\":[]}"),
        record("RUNNING", "\"512\"", "{\"service\":\"a|b\",\"processes\":[]}"),
        record("RUNNING", "\"512\"",
               "{\"processes\":[{\"pid\":1,\"startTicks\":5,\"running\":true}]}"),
        record("RUNNING", "\"512\"",
               "{\"processes\":[{\"pid\":-7,\"startTicks\":5,\"running\":true}]}"),
        record("RUNNING", "\"512\"",
               "{\"processes\":[{\"pid\":99999999999,\"startTicks\":5,\"running\":true}]}"),
        record("RUNNING", "\"512\"",
               "{\"processes\":[{\"pid\":\"12\",\"startTicks\":5,\"running\":true}]}"),
        record("RUNNING", "\"512\"",
               "{\"processes\":[{\"pid\":12,\"startTicks\":0,\"running\":1}]}"),
        record("RUNNING", "\"512\"", "{\"processes\":[7]}"),
        record("RUNNING", "\"512\"",
               "{\"processes\":[{},{},{},{},{},{},{},{},{},{},{}]}"), /* 11 containers */
        "{\"lastStatus\":\"RUNNING\",\"lastStatus\":\"STOPPED\"}",
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        char copy[2048];
        snprintf(copy, sizeof copy, "%s", damaged[i]);
        if (parse("default", ID_A, copy, &t) != TASK_PARSE_DAMAGED)
            fail_msg("accepted: %s", copy);
    }
    const char *ok = record("RUNNING", "\"512\"", RT_OK);
    char copy[2048];
    snprintf(copy, sizeof copy, "%s", ok);
    assert_int_equal(parse("bad cluster", ID_A, copy, &t), TASK_PARSE_DAMAGED);
    assert_int_equal(parse("", ID_A, copy, &t), TASK_PARSE_DAMAGED);
    assert_int_equal(parse("default", "../../etc", copy, &t), TASK_PARSE_DAMAGED);
    assert_int_equal(parse("default", ID_A "0", copy, &t), TASK_PARSE_DAMAGED);
    /* bytes after a NUL inside the value are not ignored */
    assert_int_equal(task_record_parse("default", ID_A, copy, strlen(copy) + 1, &t),
                     TASK_PARSE_DAMAGED);
}

#define CONTAINER_ID "3f0c1e2d4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"

static const char *docker_record(const char *processes)
{
    static char text[2048];
    snprintf(text, sizeof text,
             "{\"lastStatus\":\"RUNNING\",\"launchType\":\"DOCKER\",\"cpu\":\"512\","
             "\"memory\":\"64\",\"_gantry\":{\"service\":\"web\",\"processes\":%s}}",
             processes);
    return text;
}

static void test_docker_records(void **state)
{
    (void)state;
    struct ecs_task t;
    /* pid and startTicks are not a DOCKER container's identity: dockerd's pid may be 0 */
    const char *sound = docker_record(
        "[{\"name\":\"a\",\"pid\":0,\"startTicks\":0,\"running\":true,\"dockerId\":\"" CONTAINER_ID
        "\"},{\"name\":\"b\",\"pid\":7,\"startTicks\":0,\"running\":false,\"dockerId\":"
        "\"" CONTAINER_ID "\"},{\"name\":\"c\",\"running\":true,\"dockerId\":\"\"}]");
    assert_int_equal(parse("default", ID_A, sound, &t), TASK_PARSE_OK);
    assert_int_equal(t.launch, ECS_LAUNCH_DOCKER);
    assert_int_equal(t.cpu_units, 512);
    /* b is not running, c's container is not known yet */
    assert_int_equal(t.n_procs, 1);
    assert_string_equal(t.procs[0].docker_id, CONTAINER_ID);
    assert_int_equal(parse("default", ID_A, record("RUNNING", "\"512\"", RT_OK), &t),
                     TASK_PARSE_OK);
    assert_int_equal(t.launch, ECS_LAUNCH_PROCESS);
    assert_string_equal(t.procs[0].docker_id, "");

    const char *damaged[] = {
        "[{\"running\":true}]",                                    /* no dockerId */
        "[{\"running\":true,\"dockerId\":7}]",                     /* not a string */
        "[{\"running\":true,\"dockerId\":\"../../x\"}]",           /* not hex */
        "[{\"running\":true,\"dockerId\":\"3F0C1E2D4B5A\"}]",      /* not lowercase */
        "[{\"running\":true,\"dockerId\":\"3f0c1e\"}]",            /* too short */
        "[{\"running\":true,\"dockerId\":\"" CONTAINER_ID "0\"}]", /* too long */
        "[{\"running\":\"yes\",\"dockerId\":\"" CONTAINER_ID "\"}]",
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++) {
        char copy[2048];
        snprintf(copy, sizeof copy, "%s", docker_record(damaged[i]));
        if (parse("default", ID_A, copy, &t) != TASK_PARSE_DAMAGED)
            fail_msg("accepted: %s", copy);
    }
    assert_true(docker_stats_id_valid("3f0c1e2d4b5a"));
    assert_false(docker_stats_id_valid(""));
}

/* ---- dockerd's stats documents ------------------------------------------------------------- */

static void test_docker_times(void **state)
{
    (void)state;
    int64_t ns = 0;
    const int64_t at = 1795267565LL * 1000000000; /* 2026-11-21T13:26:05Z */
    assert_int_equal(docker_time_parse("2026-11-21T13:26:05.969515704Z", &ns), 0);
    assert_true(ns == at + 969515704);
    assert_int_equal(docker_time_parse("2026-11-21T13:26:05.98752781Z", &ns), 0);
    assert_true(ns == at + 987527810); /* Go drops trailing zeros */
    assert_int_equal(docker_time_parse("2026-11-21T13:26:05Z", &ns), 0);
    assert_true(ns == at);
    assert_int_equal(docker_time_parse("2026-11-21T14:26:05.5+01:00", &ns), 0);
    assert_true(ns == at + 500000000);
    assert_int_equal(docker_time_parse("2026-11-21T07:56:05-05:30", &ns), 0);
    assert_true(ns == at);
    assert_int_equal(docker_time_parse("0001-01-01T00:00:00Z", &ns), 1); /* Go's zero time */
    const char *bad[] = {"",
                         "2026-11-21",
                         "2026-11-21 13:26:05Z",
                         "2026-13-21T13:26:05Z",
                         "2026-11-21T24:26:05Z",
                         "2026-11-21T13:26:05",
                         "2026-11-21T13:26:05.Z",
                         "2026-11-21T13:26:05.1234567891Z",
                         "2026-11-21T13:26:05Zjunk",
                         "2026-11-21T13:26:05+1:00",
                         "+026-11-21T13:26:05Z",
                         "9999-11-21T13:26:05Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (docker_time_parse(bad[i], &ns) != -1)
            fail_msg("accepted: %s", bad[i]);
}

/* Cut from what Docker 20.10 sends on cgroup v1. */
#define FRAME_V1                                                                                   \
    "{\"read\":\"2026-11-21T13:26:05.969515704Z\",\"preread\":\"0001-01-01T00:00:00Z\","           \
    "\"pids_stats\":{\"current\":1},\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":44538257,"       \
    "\"percpu_usage\":[44538257,0]},\"system_cpu_usage\":37464360000000,\"online_cpus\":2},"       \
    "\"memory_stats\":{\"usage\":434176,\"max_usage\":3309568,\"stats\":{\"cache\":8192,"          \
    "\"inactive_file\":4096,\"rss\":73728,\"total_inactive_file\":8192,\"total_rss\":73728},"      \
    "\"limit\":67108864},\"name\":\"/a\",\"id\":\"" CONTAINER_ID "\"}"

static enum docker_frame_result frame(const char *text, struct docker_frame *f)
{
    return docker_frame_parse(text, strlen(text), f);
}

static void test_docker_frames(void **state)
{
    (void)state;
    struct docker_frame f;
    assert_int_equal(frame(FRAME_V1, &f), DOCKER_FRAME_OK);
    assert_true(f.read_ns == 1795267565LL * 1000000000 + 969515704);
    assert_int_equal(f.cpu_ns, 44538257);
    assert_true(f.has_memory);
    assert_int_equal(f.memory_b, 434176 - 8192); /* v1: less total_inactive_file */
    /* cgroup v2: inactive_file */
    assert_int_equal(frame("{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":"
                           "{\"total_usage\":5}},\"memory_stats\":{\"usage\":100000,"
                           "\"stats\":{\"inactive_file\":30000,\"anon\":50000}}}",
                           &f),
                     DOCKER_FRAME_OK);
    assert_int_equal(f.memory_b, 70000);
    /* a cache larger than the usage (counters read apart) is not subtracted */
    assert_int_equal(frame("{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":"
                           "{\"total_usage\":5}},\"memory_stats\":{\"usage\":1000,"
                           "\"stats\":{\"total_inactive_file\":4000,\"inactive_file\":4000}}}",
                           &f),
                     DOCKER_FRAME_OK);
    assert_int_equal(f.memory_b, 1000);
    /* a daemon without the memory controller: CPU only */
    assert_int_equal(frame("{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":"
                           "{\"total_usage\":5}},\"memory_stats\":{}}",
                           &f),
                     DOCKER_FRAME_OK);
    assert_false(f.has_memory);
    /* what dockerd sends for a container that does not run */
    assert_int_equal(frame("{\"read\":\"0001-01-01T00:00:00Z\",\"cpu_stats\":{\"cpu_usage\":"
                           "{\"total_usage\":0}},\"memory_stats\":{}}",
                           &f),
                     DOCKER_FRAME_NOT_RUNNING);
    const char *damaged[] = {
        "{not json",
        "[]",
        "{}",
        "{\"read\":7}",
        "{\"read\":\"yesterday\",\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":5}}}",
        "{\"read\":\"2026-11-21T13:26:05Z\"}",
        "{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":-5}}}",
        "{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":\"5\"}}}",
        "{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":5}},"
        "\"memory_stats\":{\"usage\":1.5}}",
        "{\"read\":\"2026-11-21T13:26:05Z\",\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":"
        "99999999999999999999}}}",
    };
    for (size_t i = 0; i < sizeof damaged / sizeof damaged[0]; i++)
        if (frame(damaged[i], &f) != DOCKER_FRAME_DAMAGED)
            fail_msg("accepted: %s", damaged[i]);
}

static void test_cpu_and_memory_forms(void **state)
{
    (void)state;
    assert_int_equal(ecs_parse_cpu("1024"), 1024);
    assert_int_equal(ecs_parse_cpu("1 vCPU"), 1024);
    assert_int_equal(ecs_parse_cpu("0.5 vcpu"), 512);
    assert_int_equal(ecs_parse_cpu("0"), 0);
    assert_int_equal(ecs_parse_cpu("2 GB"), -1);
    assert_int_equal(ecs_parse_cpu(""), -1);
    assert_int_equal(ecs_parse_cpu(NULL), -1);
    assert_int_equal(ecs_parse_memory("512"), 512);
    assert_int_equal(ecs_parse_memory("2 GB"), 2048);
    assert_int_equal(ecs_parse_memory("0.5GB"), 512);
    assert_int_equal(ecs_parse_memory("64 MiB"), 64);
    assert_int_equal(ecs_parse_memory("1 vCPU"), -1);
    assert_int_equal(ecs_parse_memory("-1"), -1);
}

/* ---- the report ---------------------------------------------------------------------------- */

static void add_task(struct task_list *l, struct task_usage *u, const char *service, const char *id,
                     int cpu, int memory, double cores, bool has_cpu, double mib)
{
    struct ecs_task *t = &l->items[l->n];
    memset(t, 0, sizeof *t);
    strcpy(t->cluster, "default");
    strcpy(t->service, service);
    strcpy(t->id, id);
    t->cpu_units = cpu;
    t->memory_mib = memory;
    u[l->n] = (struct task_usage){.sampled = true,
                                  .has_cpu = has_cpu,
                                  .cpu_cores = cores,
                                  .has_memory = true,
                                  .memory_bytes = (uint64_t)(mib * 1024 * 1024)};
    l->n++;
}

static const struct ecs_row *row_of(const struct ecs_report *r, const char *service,
                                    const char *task)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->rows[i].service, service) == 0 && strcmp(r->rows[i].task, task) == 0)
            return &r->rows[i];
    fail_msg("no row %s/%s", service, task);
    return NULL;
}

static void test_report_percentages_and_service_totals(void **state)
{
    (void)state;
    struct ecs_task items[8];
    struct task_usage usage[8];
    struct task_list l = {.items = items, .cap = 8};
    add_task(&l, usage, "web", ID_B, 512, 64, 0.5, true, 40);   /* 100%, 62.5% */
    add_task(&l, usage, "web", ID_A, 1024, 64, 0.25, true, 16); /* 25%, 25% */
    add_task(&l, usage, "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 128, 0.5, true, 32);
    add_task(&l, usage, "api", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 256, 32, 0, false, 8);
    usage[l.n].sampled = false; /* a task whose processes are gone: no row */
    l.items[l.n] = items[0];
    strcpy(l.items[l.n].id, "cccccccccccccccccccccccccccccccc");
    l.n++;
    struct ecs_report r;
    ecs_report_init(&r);
    assert_int_equal(ecs_report_build(&r, &l, usage), 0);
    assert_int_equal(r.n_tasks, 4);
    assert_int_equal(r.n, 6); /* and two services */
    double pct;
    assert_true(ecs_row_cpu_percent(row_of(&r, "web", ID_B), &pct));
    assert_float_equal(pct, 100, 1e-9);
    assert_true(ecs_row_memory_percent(row_of(&r, "web", ID_B), &pct));
    assert_float_equal(pct, 62.5, 1e-9);
    /* no reservation: measured against one vCPU */
    const struct ecs_row *lone = row_of(&r, "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_true(ecs_row_cpu_percent(lone, &pct));
    assert_float_equal(pct, 50, 1e-9);
    assert_float_equal(lone->cpu_reserved, 0, 0);
    /* the service: used over reserved, in total */
    const struct ecs_row *web = row_of(&r, "web", "");
    assert_true(ecs_row_cpu_percent(web, &pct));
    assert_float_equal(pct, (512 + 256) / 1536.0 * 100, 1e-9);
    assert_true(ecs_row_memory_percent(web, &pct));
    assert_float_equal(pct, 56 / 128.0 * 100, 1e-9);
    assert_float_equal(web->cpu_used, 768, 1e-9);
    assert_float_equal(web->cpu_reserved, 1536, 0);
    /* a first sample: no CPU, for the task nor its service, but its memory */
    const struct ecs_row *api = row_of(&r, "api", "");
    assert_false(ecs_row_cpu_percent(api, &pct));
    assert_false(ecs_row_cpu_percent(row_of(&r, "api", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"), &pct));
    assert_true(ecs_row_memory_percent(api, &pct));
    assert_float_equal(pct, 25, 1e-9);

    struct metric_retention ret = {3600, 86400};
    struct metric_batch b;
    metric_batch_init(&b, &ret);
    assert_int_equal(ecs_report_write(&r, &b, 1000), 0);
    /* per row: 2 reservations + memory used and percent + CPU used and percent when known */
    assert_int_equal(b.datapoints, 6 * 4 + 4 * 2);
    bool found = false;
    for (size_t i = 0; i < b.argc; i++)
        found |= strcmp(b.argv[i], "AWS/ECS|CPUUtilization|ClusterName=default,ServiceName=web,"
                                   "TaskId=" ID_B) == 0;
    assert_true(found);
    metric_batch_free(&b);

    struct buf out;
    buf_init(&out, 1 << 20);
    struct metrics_counters c = {.samples = 3, .redis_up = true};
    assert_int_equal(prom_render(&r, &c, &out), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    const char *text = buf_head(&out);
    assert_non_null(strstr(text, "gantry_ecs_cpu_utilization_percent{cluster=\"default\","
                                 "service=\"web\",task=\"" ID_B "\"} 100\n"));
    assert_non_null(strstr(text, "gantry_ecs_service_cpu_utilization_percent{cluster=\"default\","
                                 "service=\"web\"} 50\n"));
    assert_non_null(strstr(text, "gantry_ecs_cpu_utilization_percent{cluster=\"default\","
                                 "task=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"} 50\n"));
    assert_null(strstr(text, "gantry_ecs_cpu_utilization_percent{cluster=\"default\","
                             "service=\"api\",task="));
    assert_non_null(strstr(text, "gantry_metrics_samples_total 3\n"));
    buf_free(&out);
    ecs_report_free(&r);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 1024);
    assert_int_equal(prom_escape_label(&out, "a\\b\"c\nd"), 0);
    assert_int_equal(prom_escape_label(&out, "plain"), 0);
    assert_int_equal(buf_append(&out, "", 1), 0);
    assert_string_equal(buf_head(&out), "a\\\\b\\\"c\\ndplain");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_parsing),
        cmocka_unit_test(test_a_pid_is_verified_by_its_start_time),
        cmocka_unit_test(test_mountinfo_lines),
        cmocka_unit_test(test_task_cgroup_on_split_v1_hierarchies),
        cmocka_unit_test(test_task_cgroup_on_v1_with_cpuacct_and_a_mounted_subtree),
        cmocka_unit_test(test_task_cgroup_on_v2_and_hybrid),
        cmocka_unit_test(test_flat_keyed_files),
        cmocka_unit_test(test_sound_records),
        cmocka_unit_test(test_damaged_records),
        cmocka_unit_test(test_docker_records),
        cmocka_unit_test(test_docker_times),
        cmocka_unit_test(test_docker_frames),
        cmocka_unit_test(test_cpu_and_memory_forms),
        cmocka_unit_test(test_report_percentages_and_service_totals),
        cmocka_unit_test(test_label_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
