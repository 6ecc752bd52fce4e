/* `gantry config`: the effective configuration, printed as YAML that loads back to the same values
 * (every section and key, defaults included), and `gantry config --keys`: one line per key,
 * "section.key<TAB>type<TAB>default<TAB>help", for docs and scripts. Both walk config_schema(), so
 * a key added to the schema shows up here with nothing else to change. */
#ifndef GANTRY_CLI_CONFIG_CMD_H
#define GANTRY_CLI_CONFIG_CMD_H

/* argv[0] is "config"; returns the exit status. */
int config_cmd_main(int argc, char **argv);

#endif
