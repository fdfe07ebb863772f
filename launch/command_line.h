// Boost.Program_options plumbing shared by the subcommands: each declares its own options; everything it
// does not know is handed on as config overrides (--section.key=value).
#pragma once

#include <boost/program_options.hpp>

#include <initializer_list>
#include <string>
#include <vector>

namespace vtb {

struct ParsedCommand {
  boost::program_options::variables_map options;
  std::vector<std::string> overrides;  // --section.key=value arguments, for Config::load
  bool help = false;
};

// Adds --help and --config to `options`, parses argv[1..], and leaves the rest as overrides.
ParsedCommand parse_command(int argc, char** argv, boost::program_options::options_description& options);

// ConfigError "--NAME is required" for the first of `names` the command line does not give.
void require_options(const ParsedCommand& cmd, std::initializer_list<const char*> names);

// "usage: ... \n\n" + options + the config keys, for `vtb <command> --help`.
std::string command_help(const std::string& usage, const std::string& what,
                         const boost::program_options::options_description& options);

}  // namespace vtb
