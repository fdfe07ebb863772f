// vtb config: prints the resolved configuration (file + overrides + defaults), or every key.
#include <iostream>

#include "dist/exit_codes.h"
#include "launch/command_line.h"
#include "launch/commands.h"
#include "launch/config.h"

namespace vtb {

int config_command(int argc, char** argv) {
  boost::program_options::options_description options("Options");
  options.add_options()("keys", "list every configuration key with its default and meaning");
  const ParsedCommand cmd = parse_command(argc, argv, options);
  if (cmd.help) {
    std::cout << command_help("vtb config [--config F] [--section.key=value ...] | --keys",
                              "Prints the configuration a run would use, as INI: every key, from the command line, "
                              "the file, or its default (keys set by file or command line are marked '# set').",
                              options);
    return kExitOk;
  }
  if (cmd.options.count("keys")) {
    std::cout << Config::describe_keys();
    return kExitOk;
  }
  std::cout << Config::load(cmd.options["config"].as<std::string>(), cmd.overrides).resolved_ini();
  return kExitOk;
}

}  // namespace vtb
