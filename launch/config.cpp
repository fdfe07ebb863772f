#include "launch/config.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace po = boost::program_options;

namespace vtb {
namespace {

po::options_description all_keys() {
  po::options_description keys("Configuration keys");
  declare_config_keys(keys);
  return keys;
}

std::string strip_dashes(std::string s) {
  s.erase(0, s.find_first_not_of('-'));
  const auto eq = s.find('=');
  return eq == std::string::npos ? s : s.substr(0, eq);
}

std::string suggestion(const std::string& unknown) {
  const std::string best = closest_key(unknown, known_keys());
  return best.empty() ? std::string(". Run 'vtb config --keys' for the list of keys")
                      : fmt::format(". Did you mean '{}'?", best);
}

// The line of INI `text` that sets `key` ("section.key"), for error messages; 0 when not found.
int line_of_key(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line, section;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#' || line[first] == ';') continue;
    if (line[first] == '[') {
      section = line.substr(first + 1, line.find(']') - first - 1);
      continue;
    }
    std::string name = line.substr(first, line.find('=') - first);
    name.erase(name.find_last_not_of(" \t") + 1);
    if ((section.empty() ? name : section + "." + name) == key) return number;
  }
  return 0;
}

std::string value_text(const boost::any& v) {
  if (const auto* s = boost::any_cast<std::string>(&v)) return *s;
  if (const auto* i = boost::any_cast<int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = boost::any_cast<double>(&v)) return fmt::format("{}", *d);
  if (const auto* b = boost::any_cast<bool>(&v)) return *b ? "true" : "false";
  if (const auto* list = boost::any_cast<std::vector<std::string>>(&v)) {
    std::string joined;  // repeated keys print as one "key = value" line each (see resolved_ini)
    for (const auto& item : *list) joined += (joined.empty() ? "" : "\n") + item;
    return joined;
  }
  return "";
}

template <typename T>
T get(const po::variables_map& vm, const std::string& key) {
  auto it = vm.find(key);
  if (it == vm.end()) throw std::logic_error("config key '" + key + "' is not declared in config_keys.cpp");
  try {
    return it->second.as<T>();
  } catch (const boost::bad_any_cast&) {
    throw std::logic_error("config key '" + key + "' is read with the wrong type");
  }
}

// Each key's range check (its notifier), with the key and where it was set: po::notify would lose both.
void check_ranges(const po::options_description& keys, const po::variables_map& values, const std::string& ini_text,
                  const std::string& source, const std::vector<std::string>& overrides) {
  for (const auto& [key, value] : values) {
    const po::option_description* option = keys.find_nothrow(key, false);
    if (option == nullptr || value.empty()) continue;
    try {
      option->semantic()->notify(value.value());
    } catch (const OutOfRange& e) {
      const bool on_command_line =
          std::any_of(overrides.begin(), overrides.end(), [&](const std::string& o) { return strip_dashes(o) == key; });
      const int line = line_of_key(ini_text, key);
      const std::string where = on_command_line ? "command line: "
                                : line > 0      ? fmt::format("{}:{}: ", source, line)
                                                : std::string("default: ");
      throw ConfigError(fmt::format("{}{} = {}: {}", where, key, value_text(value.value()), e.what()));
    }
  }
}

}  // namespace

std::function<void(const double&)> positive() {
  return [](const double& v) {
    if (!(v > 0) || !std::isfinite(v)) throw OutOfRange("must be a finite number > 0");
  };
}

std::function<void(const double&)> between(double lo, double hi, bool open_above) {
  return [=](const double& v) {
    if (!(v >= lo) || !(open_above ? v < hi : v <= hi))
      throw OutOfRange(fmt::format("must be in [{}, {}{}", lo, hi, open_above ? ")" : "]"));
  };
}

std::vector<std::string> known_keys() {
  const po::options_description keys = all_keys();
  std::vector<std::string> names;
  for (const auto& option : keys.options()) names.push_back(option->long_name());
  return names;
}

std::string closest_key(const std::string& unknown, const std::vector<std::string>& known) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  const std::string u = lower(unknown);
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& k : known) {
    const std::string c = lower(k);
    // A key given without its section ("timeout_s" for "dist.timeout_s") is the best guess there is.
    if (u.find('.') == std::string::npos && c.size() > u.size() && c.compare(c.size() - u.size(), u.size(), u) == 0 &&
        c[c.size() - u.size() - 1] == '.')
      return k;
    // Levenshtein distance, one row at a time.
    std::vector<size_t> row(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= u.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        const size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (u[i - 1] == c[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    if (row[c.size()] < best_distance) {
      best_distance = row[c.size()];
      best = k;
    }
  }
  return best_distance <= std::max<size_t>(3, u.size() / 3) ? best : std::string();
}

Config Config::load(const std::string& ini_path, const std::vector<std::string>& overrides) {
  if (ini_path.empty()) return parse("", "", overrides);
  if (std::filesystem::is_directory(ini_path))
    throw ConfigError(fmt::format("config file '{}' is a directory, not an INI file", ini_path));
  std::ifstream in(ini_path);
  if (!in) throw ConfigError(fmt::format("cannot open config file '{}': {}", ini_path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), ini_path, overrides);
}

Config Config::parse(const std::string& ini_text, const std::string& source,
                     const std::vector<std::string>& overrides) {
  const po::options_description keys = all_keys();
  Config config;
  const auto style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
  // "--key=" sets an empty string; Boost wants the empty value as its own argument.
  std::vector<std::string> args;
  for (const auto& o : overrides) {
    if (o.size() > 3 && o.rfind("--", 0) == 0 && o.back() == '=' && std::count(o.begin(), o.end(), '=') == 1) {
      args.push_back(o.substr(0, o.size() - 1));
      args.emplace_back();
    } else {
      args.push_back(o);
    }
  }
  try {
    po::store(po::command_line_parser(args).options(keys).style(style).run(), config.values_);
  } catch (const po::unknown_option& e) {
    throw ConfigError(fmt::format("unknown config key '{}' on the command line{}", strip_dashes(e.get_option_name()),
                                  suggestion(strip_dashes(e.get_option_name()))));
  } catch (const po::error& e) {
    throw ConfigError(fmt::format("command line: {}", e.what()));
  }

  if (!source.empty()) {
    std::istringstream in(ini_text);
    try {
      po::store(po::parse_config_file(in, keys, /*allow_unregistered=*/false), config.values_);
    } catch (const po::unknown_option& e) {
      const std::string key = strip_dashes(e.get_option_name());
      throw ConfigError(
          fmt::format("{}:{}: unknown config key '{}'{}", source, line_of_key(ini_text, key), key, suggestion(key)));
    } catch (const po::error& e) {
      std::string where = source;
      if (const auto* oe = dynamic_cast<const po::error_with_option_name*>(&e)) {
        const std::string key = strip_dashes(oe->get_option_name());
        if (int line = line_of_key(ini_text, key); line > 0) where += ":" + std::to_string(line);
      }
      throw ConfigError(fmt::format("{}: {}", where, e.what()));
    }
  }
  check_ranges(keys, config.values_, ini_text, source, overrides);
  po::notify(config.values_);
  return config;
}

bool Config::is_set(const std::string& key) const {
  const auto it = values_.find(key);
  return it != values_.end() && !it->second.empty() && !it->second.defaulted();
}

std::string Config::str(const std::string& key) const { return get<std::string>(values_, key); }
std::vector<std::string> Config::list(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() || it->second.empty() ? std::vector<std::string>{}
                                                   : it->second.as<std::vector<std::string>>();
}
int64_t Config::integer(const std::string& key) const { return get<int64_t>(values_, key); }
double Config::real(const std::string& key) const { return get<double>(values_, key); }
bool Config::flag(const std::string& key) const { return get<bool>(values_, key); }

std::vector<std::pair<std::string, std::string>> Config::values() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& key : known_keys())
    if (auto it = values_.find(key); it != values_.end() && !it->second.empty())
      out.emplace_back(key, value_text(it->second.value()));
  return out;
}

std::string Config::resolved_ini() const {
  std::ostringstream out;
  std::string section;
  for (const auto& key : known_keys()) {
    const auto dot = key.find('.');
    const std::string s = key.substr(0, dot);
    if (s != section) {
      out << (section.empty() ? "" : "\n") << '[' << s << "]\n";
      section = s;
    }
    const auto& v = values_[key];
    if (v.empty()) continue;  // a repeatable key given nowhere
    const std::string text = value_text(v.value());
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line) || text.empty();) {  // an empty string is written as `key =`
      out << key.substr(dot + 1) << " =" << (line.empty() ? "" : " ") << line << (v.defaulted() ? "" : "  # set")
          << '\n';
      if (text.empty()) break;
    }
  }
  return out.str();
}

std::string Config::describe_keys() {
  std::ostringstream out;
  out << all_keys();
  return out.str();
}

}  // namespace vtb
