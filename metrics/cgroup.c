#include "metrics/cgroup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/procfs.h"

/* --- mounts --- */

static bool copy_text(char *out, size_t size, const char *text)
{
    return (size_t)snprintf(out, size, "%s", text) < size;
}

int cg_mount_parse_line(char *line, struct cg_mount *out)
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
    if (n < 5 || dash + 3 >= n)
        return -1;
    const char *fstype = fields[dash + 1];
    bool v2 = strcmp(fstype, "cgroup2") == 0;
    if (!v2 && strcmp(fstype, "cgroup") != 0)
        return 0;
    procfs_unescape_octal(fields[3]);
    procfs_unescape_octal(fields[4]);
    out->v2 = v2;
    if (!copy_text(out->options, sizeof out->options, fields[dash + 3]) ||
        !copy_text(out->root, sizeof out->root, fields[3]) ||
        !copy_text(out->point, sizeof out->point, fields[4]))
        return -1;
    return 1;
}

int cg_mounts_load(struct cg_mounts *m)
{
    m->n = 0;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    while (m->n < CG_MAX_MOUNTS && getline(&line, &cap, f) > 0)
        if (cg_mount_parse_line(line, &m->items[m->n]) == 1)
            m->n++;
    free(line);
    fclose(f);
    return 0;
}

/* --- locating a task's cgroup --- */

/* The path of a cgroup of that task: ".../gantry/TASK_ID", with no ".." (a process outside our
 * cgroup namespace shows one) that could lead the directory elsewhere. */
static bool is_task_path(const char *path, const char *task_id)
{
    char tail[128];
    int n = snprintf(tail, sizeof tail, "/gantry/%s", task_id);
    size_t len = strlen(path);
    if (n < 0 || (size_t)n >= sizeof tail || len < (size_t)n || path[0] != '/')
        return false;
    return strcmp(path + len - (size_t)n, tail) == 0 && !strstr(path, "/..");
}

/* The directory of a hierarchy's path through the first mount of that hierarchy showing it. */
static bool map_path(const struct cg_mounts *m, bool v2, const char *controller, const char *path,
                     char *out, size_t size)
{
    for (int i = 0; i < m->n; i++) {
        const struct cg_mount *mt = &m->items[i];
        if (mt->v2 != v2 || (!v2 && !procfs_has_token(mt->options, ",", controller)))
            continue;
        size_t rl = strcmp(mt->root, "/") == 0 ? 0 : strlen(mt->root);
        if (strncmp(path, mt->root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
            continue;
        return (size_t)snprintf(out, size, "%s%s", mt->point, path + rl) < size;
    }
    return false;
}

/* One line of /proc/PID/cgroup, "ID:CONTROLLERS:PATH", applied to out. */
static void locate_line(const struct cg_mounts *m, char *line, const char *task_id,
                        struct task_cg *out, char *v2_dir, bool *v2_found)
{
    char *list = strchr(line, ':');
    char *path = list ? strchr(list + 1, ':') : NULL;
    if (!path)
        return;
    *path++ = '\0';
    *list++ = '\0'; /* line is now the hierarchy ID alone */
    if (!is_task_path(path, task_id))
        return;
    if (strcmp(line, "0") == 0 && *list == '\0') {
        *v2_found = map_path(m, true, NULL, path, v2_dir, CG_PATH_MAX);
        return;
    }
    if (procfs_has_token(list, ",", "cpu") &&
        map_path(m, false, "cpu", path, out->cpu_dir, sizeof out->cpu_dir))
        out->cpuacct = procfs_has_token(list, ",", "cpuacct");
    if (procfs_has_token(list, ",", "memory"))
        map_path(m, false, "memory", path, out->mem_dir, sizeof out->mem_dir);
}

int cg_locate(const struct cg_mounts *m, const char *proc_cgroup, const char *task_id,
              struct task_cg *out)
{
    memset(out, 0, sizeof *out);
    char *text = strdup(proc_cgroup);
    if (!text)
        return -1;
    bool v2 = false;
    char v2_dir[CG_PATH_MAX];
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        locate_line(m, line, task_id, out, v2_dir, &v2);
    free(text);
    /* A task's v1 cgroups win over a v2 path: on a hybrid machine the runner uses v1, and the
     * unified hierarchy then holds no controller. */
    if (out->cpu_dir[0] || out->mem_dir[0])
        out->mode = CG_V1;
    else if (v2 && copy_text(out->cpu_dir, sizeof out->cpu_dir, v2_dir))
        out->mode = CG_V2;
    return out->mode == CG_NONE ? -1 : 0;
}

int cg_find_task(const struct cg_mounts *m, pid_t pid, const char *task_id, struct task_cg *out)
{
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    memset(out, 0, sizeof *out);
    if (procfs_read_file(path, text, sizeof text) <= 0)
        return -1;
    return cg_locate(m, text, task_id, out);
}

/* --- reading --- */

bool cg_stat_value(const char *text, const char *key, uint64_t *out)
{
    size_t len = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, len) != 0 || p[len] != ' ')
            continue;
        char *end;
        unsigned long long v = strtoull(p + len + 1, &end, 10);
        if (end == p + len + 1 || (*end != '\n' && *end != '\0'))
            return false;
        *out = v;
        return true;
    }
    return false;
}

static int read_in(const char *dir, const char *file, char *buf, size_t size)
{
    char path[CG_PATH_MAX + 64];
    if (!dir[0] || (size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return -1;
    return procfs_read_file(path, buf, size) > 0 ? 0 : -1;
}

static int read_number(const char *dir, const char *file, uint64_t *out)
{
    char text[64], *end;
    if (read_in(dir, file, text, sizeof text) < 0)
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || (*end != '\n' && *end != '\0'))
        return -1;
    *out = v;
    return 0;
}

int cg_cpu_usage_ns(const struct task_cg *cg, uint64_t *ns)
{
    if (cg->mode == CG_V1)
        return cg->cpuacct ? read_number(cg->cpu_dir, "cpuacct.usage", ns) : -1;
    char text[1024];
    uint64_t usec;
    if (cg->mode != CG_V2 || read_in(cg->cpu_dir, "cpu.stat", text, sizeof text) < 0 ||
        !cg_stat_value(text, "usage_usec", &usec))
        return -1;
    *ns = usec * 1000;
    return 0;
}

int cg_memory_bytes(const struct task_cg *cg, uint64_t *bytes)
{
    char text[8192];
    uint64_t current, inactive;
    if (cg->mode == CG_V1)
        return read_in(cg->mem_dir, "memory.stat", text, sizeof text) == 0 &&
                       (cg_stat_value(text, "total_rss", bytes) ||
                        cg_stat_value(text, "rss", bytes))
                   ? 0
                   : -1;
    if (cg->mode != CG_V2 || read_in(cg->cpu_dir, "memory.stat", text, sizeof text) < 0)
        return -1;
    if (read_number(cg->cpu_dir, "memory.current", &current) == 0 &&
        cg_stat_value(text, "inactive_file", &inactive)) {
        *bytes = current > inactive ? current - inactive : 0;
        return 0;
    }
    return cg_stat_value(text, "anon", bytes) ? 0 : -1;
}

int cg_procs_sum(const struct task_cg *cg, uint64_t *cpu_ticks, uint64_t *rss_bytes)
{
    const char *dir = cg->cpu_dir[0] ? cg->cpu_dir : cg->mem_dir;
    char path[CG_PATH_MAX + 64];
    if (!dir[0] || (size_t)snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= sizeof path)
        return -1;
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int found = 0;
    long pid;
    *cpu_ticks = *rss_bytes = 0;
    while (fscanf(f, "%ld", &pid) == 1) {
        struct proc_stat st;
        if (pid <= 0 || procfs_read_stat((pid_t)pid, &st) < 0)
            continue; /* exited since the list was read */
        *cpu_ticks += st.cpu_ticks;
        *rss_bytes += st.rss_bytes;
        found++;
    }
    fclose(f);
    return found ? 0 : -1;
}
