/* `gantry metrics`: the metric store (metrics/store.h) from the command line.
 *   put NAME VALUE   one datapoint, as CloudWatch's put-metric-data (scripts, tests);
 *   get NAME         one windowed statistic, read through metric_read_window and
 *                    metric_window_value as the autoscaler reads it: the value alone on stdout;
 *   (nothing)        every series with its natural statistic over a short window, for an
 *                    operator.
 * Series ids and values from Redis are read as untrusted: escaped for the terminal, "-" when
 * they hold no datapoint.
 * Exit status: 0 done, 1 an invalid value or Redis unreachable, 2 usage, 3 get found no
 * datapoint in its window. */
#ifndef GANTRY_CLI_METRICS_CMD_H
#define GANTRY_CLI_METRICS_CMD_H

/* argv[0] is "metrics"; returns the exit status. */
int metrics_cmd_main(int argc, char **argv);

#endif
