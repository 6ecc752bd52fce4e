/* Commands whose operands may come before their options (`gantry logs 3f2a --tail 20`): the
 * options, with their values, are moved in front of the operands before the common parser
 * (daemon_args_parse), which stops at the first operand, sees them. */
#ifndef GANTRY_CLI_ARGS_H
#define GANTRY_CLI_ARGS_H

#include <stdbool.h>

/* Splits argv into opts (argv[0] first, then each option with its value) and operands; both
 * arrays hold argc + 1 entries. takes_value: the options followed by a value (NULL-terminated).
 * With negative_numbers, "-3.5" is an operand (a metric value), not an option. Everything after
 * "--" is an operand. */
void cli_split_args(int argc, char **argv, const char *const *takes_value, bool negative_numbers,
                    char **opts, int *n_opts, char **operands, int *n_operands);

#endif
