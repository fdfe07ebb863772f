#include "launch/command_line.h"

#include <sstream>

#include "launch/config.h"

namespace po = boost::program_options;

namespace vtb {

ParsedCommand parse_command(int argc, char** argv, po::options_description& options) {
  options.add_options()("help,h", "show this help")("config", po::value<std::string>()->default_value(""),
                                                    "INI config file; keys can be overridden as --section.key=value");

  // Config keys always have a section ("--dist.timeout_s=5" or "--dist.timeout_s 5"); command options
  // never do. Split on that rather than on Boost's allow_unregistered, which drops "--unknown=value".
  ParsedCommand parsed;
  std::vector<std::string> own;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::string name = arg.substr(0, arg.find('='));
    if (arg.rfind("--", 0) == 0 && name.find('.') != std::string::npos) {
      parsed.overrides.push_back(arg);
      if (arg.find('=') == std::string::npos && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0)
        parsed.overrides.push_back(argv[++i]);
    } else {
      own.push_back(arg);
    }
  }
  const auto style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
  try {
    po::store(po::command_line_parser(own).options(options).style(style).run(), parsed.options);
    po::notify(parsed.options);
  } catch (const po::unknown_option& e) {
    std::string name = e.get_option_name();
    name = name.substr(name.find_first_not_of('-'));
    name = name.substr(0, name.find('='));
    std::vector<std::string> candidates = known_keys();
    for (const auto& o : options.options()) candidates.push_back(o->long_name());
    const std::string best = closest_key(name, candidates);
    throw ConfigError("unknown option '--" + name + "'" + (best.empty() ? "" : ". Did you mean '--" + best + "'?"));
  } catch (const po::error& e) {
    throw ConfigError(std::string("command line: ") + e.what());
  }
  parsed.help = parsed.options.count("help") > 0;
  return parsed;
}

void require_options(const ParsedCommand& cmd, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (!cmd.options.count(name)) throw ConfigError(std::string("--") + name + " is required");
}

std::string command_help(const std::string& usage, const std::string& what, const po::options_description& options) {
  std::ostringstream out;
  out << "usage: " << usage << "\n\n"
      << what << "\n\n"
      << options << "\n"
      << "Any configuration key can be given as --section.key=value; 'vtb config --keys' lists them.\n";
  return out.str();
}

}  // namespace vtb
