/* bin/gantry, Gantry's command line: `gantry COMMAND [options]`. This file only dispatches; each
 * command lives in its own file (cli/up.c, cli/config_cmd.c). */
#include <stdio.h>
#include <string.h>

#include "cli/config_cmd.h"
#include "cli/logs_cmd.h"
#include "cli/metrics_cmd.h"
#include "cli/scaling_cmd.h"
#include "cli/status_cmd.h"
#include "cli/targets_cmd.h"
#include "cli/up.h"

#define GANTRY_VERSION "0.1.0-dev"

struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
    const char *summary;
};

static int help_main(int argc, char **argv);
static int version_main(int argc, char **argv);

static const struct command commands[] = {
    {"up", up_main, "run the whole stack on this machine (redis, demo workload, ...)"},
    {"config", config_cmd_main, "print the effective configuration, or every key (--keys)"},
    {"targets", targets_cmd_main, "register, deregister, list or watch target-group members"},
    {"status", status_cmd_main, "clusters, services, tasks and their targets' health, from Redis"},
    {"logs", logs_cmd_main, "print a task's container logs (gantry logs TASK)"},
    {"metrics", metrics_cmd_main, "put, get or list metrics (windowed statistics, from Redis)"},
    {"scaling", scaling_cmd_main, "scaling activities: what gantry-autoscaler did and why"},
    {"version", version_main, "print the version"},
    {"help", help_main, "show this help"},
};

static void print_usage(FILE *out)
{
    fprintf(out, "gantry: Gantry's command line, a self-hosted load balancer and autoscaler\n\n"
                 "usage: gantry COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`gantry COMMAND --help` describes a command's options.\n");
}

static int help_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    print_usage(stdout);
    return 0;
}

static int version_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("gantry %s\n", GANTRY_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0)
        name = "version";
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr,
            "gantry: unknown command '%s' (expected up, config, targets, status, logs, metrics, "
            "scaling, version or help; see gantry --help)\n",
            argv[1]);
    return 2;
}
