/* `gantry logs TASK`: a task's container logs, the files gantry-core appends each container's
 * stdout and stderr to (core.run_dir/tasks/ID/NAME.log, docs/core.md), read from the file system:
 * it needs neither Redis nor a running gantry-core. TASK is the id, its ARN, or a prefix of at
 * least 4 characters that names one task directory. Each file is printed as it was when opened,
 * streamed through a fixed buffer; --tail N reads backwards from the end, so memory does not grow
 * with the file. Several containers are printed one after the other, each under "==> NAME <==".
 * Exit status: 0 done, 1 no such task or container, an ambiguous prefix or an unreadable file,
 * 2 usage. */
#ifndef GANTRY_CLI_LOGS_CMD_H
#define GANTRY_CLI_LOGS_CMD_H

/* argv[0] is "logs"; returns the exit status. */
int logs_cmd_main(int argc, char **argv);

#endif
