/* gantry-autoscaler: target tracking, step and scheduled scaling of ECS services from policies in
 * the configuration files (autoscaler/daemon.h). */
#include <stdio.h>

#include "autoscaler/daemon.h"
#include "common/log.h"

int main(int argc, char **argv)
{
    static struct autoscaler a; /* large (the datapoints): not on the stack */
    struct daemon_usage usage = {
        .name = "gantry-autoscaler",
        .summary = "scales ECS services with target tracking, step and scheduled policies",
        .flags = DAEMON_TAKES_REDIS,
    };
    int rc = daemon_args_parse(argc, argv, &usage, &a.args);
    if (rc != DAEMON_ARGS_GO_ON)
        return rc;
    if (a.args.first_operand < argc) {
        fprintf(stderr, "gantry-autoscaler: unexpected argument '%s' (see --help)\n",
                argv[a.args.first_operand]);
        return 2;
    }
    struct cfg_errors errors;
    int failed = autoscaler_load_config(&a.cfg, &a.model, &a.args, &errors) < 0;
    if (failed)
        config_print_errors(&errors, stderr);
    if (a.args.check && !failed)
        printf("configuration OK\n");
    if (a.args.check || failed) {
        as_model_free(&a.model);
        config_free(&a.cfg);
        return failed ? 1 : 0;
    }
    log_init("gantry-autoscaler", (enum log_level)a.cfg.log.level);
    rc = autoscaler_run(&a);
    autoscaler_free(&a);
    return rc;
}
