/* gantry-metrics: samples the CPU and memory of gantry-core's tasks every second and writes ECS's
 * CPUUtilization and MemoryUtilization (and Container Insights' raw values) per task and per
 * service into the metric store; the latest values on its admin port (metrics/daemon.h). */
#include <stdio.h>

#include "common/log.h"
#include "metrics/daemon.h"

int main(int argc, char **argv)
{
    struct metrics_daemon d = {0};
    struct daemon_usage usage = {
        .name = "gantry-metrics",
        .summary = "samples the CPU and memory of gantry-core's tasks into the metric store",
        .flags = DAEMON_TAKES_REDIS | DAEMON_TAKES_ADMIN,
    };
    int rc = daemon_args_parse(argc, argv, &usage, &d.args);
    if (rc != DAEMON_ARGS_GO_ON)
        return rc;
    if (d.args.first_operand < argc) {
        fprintf(stderr, "gantry-metrics: unexpected argument '%s' (see --help)\n",
                argv[d.args.first_operand]);
        return 2;
    }
    struct cfg_errors errors;
    int failed = metrics_load_config(&d.cfg, &d.args, &errors) < 0;
    if (failed)
        config_print_errors(&errors, stderr);
    if (d.args.check && !failed)
        printf("configuration OK\n");
    if (d.args.check || failed) {
        config_free(&d.cfg);
        return failed ? 1 : 0;
    }
    log_init("gantry-metrics", (enum log_level)d.cfg.log.level);
    rc = metrics_daemon_run(&d);
    metrics_daemon_free(&d);
    return rc;
}
