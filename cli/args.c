#include "cli/args.h"

#include <ctype.h>
#include <string.h>

static bool in_list(const char *arg, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(arg, list[i]) == 0)
            return true;
    return false;
}

/* "-3" or "-.5" */
static bool is_negative_number(const char *arg)
{
    return arg[0] == '-' &&
           (isdigit((unsigned char)arg[1]) || (arg[1] == '.' && isdigit((unsigned char)arg[2])));
}

void cli_split_args(int argc, char **argv, const char *const *takes_value, bool negative_numbers,
                    char **opts, int *n_opts, char **operands, int *n_operands)
{
    *n_opts = *n_operands = 0;
    opts[(*n_opts)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                operands[(*n_operands)++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1] && !(negative_numbers && is_negative_number(a))) {
            opts[(*n_opts)++] = argv[i];
            if (in_list(a, takes_value) && i + 1 < argc)
                opts[(*n_opts)++] = argv[++i];
        } else {
            operands[(*n_operands)++] = argv[i];
        }
    }
}
