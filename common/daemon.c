#include "common/daemon.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

static void print_usage(FILE *out, const struct daemon_usage *u)
{
    fprintf(out, "%s: %s\n\nusage: %s [options]\n", u->name, u->summary, u->name);
    if (u->extra)
        fprintf(out, "%s", u->extra);
    fprintf(out, "\noptions:\n"
                 "  -c, --config FILE     read FILE (YAML or JSON); may be given several times,\n"
                 "                        later files override earlier ones\n"
                 "  --check               validate the configuration, print 'configuration OK'\n"
                 "                        or the errors, and exit 0 or 1\n"
                 "  --log-level LEVEL     debug, info, warn or error (overrides log.level)\n");
    if (u->flags & DAEMON_TAKES_REDIS)
        fprintf(out, "  --redis URL           redis://HOST:PORT[/DB] or unix:/path (overrides "
                     "redis.url)\n");
    if (u->flags & DAEMON_TAKES_LISTEN)
        fprintf(out, "  --listen ADDR         address to serve on, e.g. 127.0.0.1:8080\n");
    if (u->flags & DAEMON_TAKES_ADMIN)
        fprintf(out, "  --admin ADDR          admin listener address, e.g. 127.0.0.1:9901\n");
    for (const struct daemon_option *o = u->options; o && o->name; o++)
        fprintf(out, "  %s\n", o->help);
    fprintf(out, "  -h, --help            show this help\n"
                 "\nWith no -c, the documented defaults apply (see config/README.md).\n");
}

enum { OPT_CHECK = 256, OPT_REDIS, OPT_LISTEN, OPT_ADMIN, OPT_LOG_LEVEL, OPT_EXTRA = 512 };
enum { MAX_EXTRA_OPTIONS = 16 };

/* The common options, then the daemon's own (their val is OPT_EXTRA + their index). */
static void build_options(const struct daemon_usage *usage, struct option *options)
{
    static const struct option common[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, OPT_CHECK},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
    };
    size_t n = sizeof common / sizeof common[0];
    memcpy(options, common, sizeof common);
    for (size_t i = 0; usage->options && i < MAX_EXTRA_OPTIONS && usage->options[i].name; i++)
        options[n++] = (struct option){usage->options[i].name,
                                       usage->options[i].has_arg ? required_argument : no_argument,
                                       NULL, OPT_EXTRA + (int)i};
    options[n] = (struct option){NULL, 0, NULL, 0};
}

int daemon_args_parse(int argc, char **argv, const struct daemon_usage *usage,
                      struct daemon_args *out)
{
    struct option options[8 + MAX_EXTRA_OPTIONS];
    build_options(usage, options);
    memset(out, 0, sizeof *out);
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
        unsigned needs = opt == OPT_REDIS    ? DAEMON_TAKES_REDIS
                         : opt == OPT_LISTEN ? DAEMON_TAKES_LISTEN
                         : opt == OPT_ADMIN  ? DAEMON_TAKES_ADMIN
                                             : 0;
        if (needs && !(usage->flags & needs)) {
            const char *name = opt == OPT_REDIS    ? "--redis"
                               : opt == OPT_LISTEN ? "--listen"
                                                   : "--admin";
            fprintf(stderr, "%s: option '%s' is not one of this program's (see --help)\n",
                    usage->name, name);
            return 2;
        }
        switch (opt) {
        case 'c':
            if (out->n_config_files == DAEMON_MAX_CONFIG_FILES) {
                fprintf(stderr, "%s: at most %d -c options\n", usage->name,
                        DAEMON_MAX_CONFIG_FILES);
                return 2;
            }
            out->config_files[out->n_config_files++] = optarg;
            break;
        case OPT_CHECK:
            out->check = true;
            break;
        case OPT_REDIS:
            out->redis_url = optarg;
            break;
        case OPT_LISTEN:
            out->listen = optarg;
            break;
        case OPT_ADMIN:
            out->admin = optarg;
            break;
        case OPT_LOG_LEVEL:
            out->log_level = optarg;
            break;
        case 'h':
            print_usage(stdout, usage);
            return 0;
        default:
            if (opt >= OPT_EXTRA && opt < OPT_EXTRA + MAX_EXTRA_OPTIONS) {
                if (usage->on_option(usage->ctx, &usage->options[opt - OPT_EXTRA], optarg) < 0)
                    return 2;
                break;
            }
            fprintf(stderr, "%s: %s '%s' (see --help)\n", usage->name,
                    optopt ? "option needs a value or is unknown:" : "unknown option",
                    argv[optind - 1]);
            return 2;
        }
    }
    out->first_operand = optind;
    return DAEMON_ARGS_GO_ON;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct daemon_signals *s = w->data;
    if (w->signum == SIGHUP) {
        if (s->on_reload)
            s->on_reload(s->ctx);
        return;
    }
    if (s->on_stop)
        s->on_stop(s->ctx);
}

void daemon_signals_start(struct ev_loop *loop, struct daemon_signals *s, void (*on_stop)(void *),
                          void (*on_reload)(void *), void *ctx)
{
    signal(SIGPIPE, SIG_IGN);
    s->on_stop = on_stop;
    s->on_reload = on_reload;
    s->ctx = ctx;
    ev_signal_init(&s->term, on_signal, SIGTERM);
    ev_signal_init(&s->intr, on_signal, SIGINT);
    ev_signal_init(&s->hup, on_signal, SIGHUP);
    s->term.data = s->intr.data = s->hup.data = s;
    ev_signal_start(loop, &s->term);
    ev_signal_start(loop, &s->intr);
    ev_signal_start(loop, &s->hup);
}

void daemon_signals_stop(struct ev_loop *loop, struct daemon_signals *s)
{
    ev_signal_stop(loop, &s->term);
    ev_signal_stop(loop, &s->intr);
    ev_signal_stop(loop, &s->hup);
    /* libev restores the default actions: a second SIGTERM during the last teardown would kill
     * the process instead of letting it exit 0. It is leaving anyway. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
}

static void notify_systemd(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof sun.sun_path)
        return;
    memcpy(sun.sun_path, path, n);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sun,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    close(fd);
}

void daemon_ready(const char *const *addrs, size_t n)
{
    char mem[1024] = "";
    struct buf line;
    buf_init_fixed(&line, mem, sizeof mem);
    buf_append_str(&line, "READY");
    for (size_t i = 0; i < n; i++)
        buf_printf(&line, " %s", addrs[i]);
    log_info("ready%s%s", n ? " on" : "", buf_head(&line) + 5);
    buf_append_str(&line, "\n");

    const char *fd_text = getenv("GANTRY_READY_FD");
    if (fd_text && *fd_text) {
        char *end;
        long fd = strtol(fd_text, &end, 10);
        if (*end == '\0' && fd > 2 && fd < 65536) {
            ssize_t ignored = write((int)fd, buf_head(&line), buf_unread(&line));
            (void)ignored;
            close((int)fd);
        }
        unsetenv("GANTRY_READY_FD"); /* children must not inherit the announcement */
    }
    notify_systemd();
}
