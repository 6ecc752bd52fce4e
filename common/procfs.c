#include "common/procfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t procfs_read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno; /* the caller's message says why */
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* The next space-separated unsigned number; false at the end or on anything else. */
static bool next_number(const char **p, unsigned long long *out)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s) && *s != '-')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno)
        return false;
    *out = v < 0 ? 0 : (unsigned long long)v; /* tty_nr and the like may be negative: unused */
    *p = end;
    return true;
}

int procfs_parse_stat(const char *text, struct proc_stat *out)
{
    const char *p = strrchr(text, ')');
    if (!p || p[1] != ' ' || !p[2])
        return -1;
    out->state = p[2];
    p += 3; /* past ") " and the one-letter state (field 3) */
    /* Fields 4 to 24: ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
     * stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss. */
    unsigned long long f[21];
    for (int i = 0; i < 21; i++)
        if (!next_number(&p, &f[i]))
            return -1;
    long page = sysconf(_SC_PAGESIZE);
    out->pgrp = (pid_t)f[1];
    out->cpu_ticks = f[10] + f[11] + f[12] + f[13];
    out->start_ticks = f[18];
    out->rss_bytes = f[20] * (unsigned long long)(page > 0 ? page : 4096);
    return 0;
}

int procfs_read_stat(pid_t pid, struct proc_stat *out)
{
    char path[64], text[1024];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (procfs_read_file(path, text, sizeof text) <= 0)
        return -1;
    return procfs_parse_stat(text, out);
}

bool procfs_is_container(pid_t pid, uint64_t start_ticks, struct proc_stat *out)
{
    struct proc_stat st;
    /* pid 1 and below never: a damaged record must not make us read init's group. */
    if (pid <= 1 || start_ticks == 0 || procfs_read_stat(pid, &st) < 0)
        return false;
    if (st.start_ticks != start_ticks)
        return false;
    if (out)
        *out = st;
    return true;
}

uint64_t procfs_ticks_to_ns(uint64_t ticks, long clk_tck)
{
    if (clk_tck <= 0)
        clk_tck = 100;
    return ticks / (uint64_t)clk_tck * 1000000000ull +
           ticks % (uint64_t)clk_tck * 1000000000ull / (uint64_t)clk_tck;
}

/* --- the table of process groups --- */

static int add_entry(struct proc_groups *g, const struct proc_stat *st)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        struct proc_group_entry *items = realloc(g->items, cap * sizeof *items);
        if (!items)
            return -1;
        g->items = items;
        g->cap = cap;
    }
    g->items[g->n++] = (struct proc_group_entry){st->pgrp, st->cpu_ticks, st->rss_bytes};
    return 0;
}

static int by_pgrp(const void *a, const void *b)
{
    pid_t x = ((const struct proc_group_entry *)a)->pgrp;
    pid_t y = ((const struct proc_group_entry *)b)->pgrp;
    return (x > y) - (x < y);
}

/* Sorted, then one entry per group holding the sums. */
static void merge_groups(struct proc_groups *g)
{
    if (g->n > 1) /* qsort wants an array, even of nothing */
        qsort(g->items, g->n, sizeof *g->items, by_pgrp);
    size_t out = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (out && g->items[out - 1].pgrp == g->items[i].pgrp) {
            g->items[out - 1].cpu_ticks += g->items[i].cpu_ticks;
            g->items[out - 1].rss_bytes += g->items[i].rss_bytes;
        } else {
            g->items[out++] = g->items[i];
        }
    }
    g->n = out;
}

int procfs_groups_build(struct proc_groups *g)
{
    if (g->built)
        return 0;
    g->built = true;
    g->n = 0;
    DIR *dir = opendir("/proc");
    if (!dir)
        return -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        struct proc_stat st;
        if (*end || pid <= 0 || procfs_read_stat((pid_t)pid, &st) < 0)
            continue; /* not a process, or one that just exited */
        rc = add_entry(g, &st);
    }
    closedir(dir);
    if (rc < 0) {
        g->n = 0;
        return -1;
    }
    merge_groups(g);
    return 0;
}

bool procfs_groups_sum(const struct proc_groups *g, pid_t pgrp, uint64_t *cpu_ticks,
                       uint64_t *rss_bytes)
{
    struct proc_group_entry key = {.pgrp = pgrp};
    const struct proc_group_entry *e =
        g->n ? bsearch(&key, g->items, g->n, sizeof *g->items, by_pgrp) : NULL;
    if (!e)
        return false;
    *cpu_ticks = e->cpu_ticks;
    *rss_bytes = e->rss_bytes;
    return true;
}

void procfs_groups_reset(struct proc_groups *g)
{
    g->n = 0;
    g->built = false;
}

void procfs_groups_free(struct proc_groups *g)
{
    free(g->items);
    *g = (struct proc_groups){0};
}

bool procfs_has_token(const char *list, const char *seps, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, seps);
        if (n == len && strncmp(p, word, len) == 0)
            return true;
        p += n;
        p += strspn(p, seps);
    }
    return false;
}

void procfs_unescape_octal(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}
