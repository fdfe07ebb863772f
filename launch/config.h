// vtb's configuration: INI files ([section] key = value) read by Boost.Program_options, every key
// overridable on the command line as --section.key=value. Precedence: command line > file > default.
// Keys are declared in one place, config_keys.cpp, each with its type, default and one line of help.
#pragma once

#include <boost/program_options.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vtb {

// A config problem a person can fix: an unknown key, a bad value, a missing file.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by a number key's range check; Config::parse turns it into a ConfigError naming the key, its
// value and where it was set.
struct OutOfRange : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Range checks for a number key, attached in config_keys.cpp with ->notifier(...). Each also refuses NaN
// and infinities.
template <class T>
std::function<void(const T&)> at_least(T lo) {
  return [lo](const T& v) {
    if (!(v >= lo) || !std::isfinite(static_cast<double>(v))) {
      std::ostringstream m;
      m << "must be a finite number ≥ " << lo;
      throw OutOfRange(m.str());
    }
  };
}
// 0 < v, finite.
std::function<void(const double&)> positive();
// lo ≤ v ≤ hi (closed) or lo ≤ v < hi (`open_above`: a dropout, an Adam beta).
std::function<void(const double&)> between(double lo, double hi, bool open_above = false);

// A setting that names one of a fixed set of choices, listed in the enum's home header as (name, value)
// pairs (e.g. model::kLoraLayouts): the value `text` names; ConfigError naming `key` and every allowed name otherwise.
template <class E, class Range>
E parse_choice(const std::string& key, const std::string& text, const Range& choices) {
  std::string allowed;
  for (const auto& [name, value] : choices) {
    if (name == text) return value;
    allowed += (allowed.empty() ? "" : ", ") + std::string(name);
  }
  throw ConfigError(key + " = '" + text + "': must be one of " + allowed);
}

// The name of `value` among `choices`: how a config prints it.
template <class E, class Range>
std::string choice_name(E value, const Range& choices) {
  for (const auto& [name, v] : choices)
    if (v == value) return std::string(name);
  throw std::logic_error("a value that names no choice");
}

class Config {
 public:
  // Reads `ini_path` (may be empty: defaults only), then applies `overrides` ("--section.key=value" or
  // "--section.key value"). Throws ConfigError naming the key, where it came from, and for an unknown key
  // the closest known one.
  static Config load(const std::string& ini_path, const std::vector<std::string>& overrides);
  // The same from INI text already in memory (a checkpoint's stored config); `source` names it in errors
  // (empty: no text, defaults only).
  static Config parse(const std::string& ini_text, const std::string& source,
                      const std::vector<std::string>& overrides);

  // Whether `key` was given (in the file or on the command line), not left at its default.
  bool is_set(const std::string& key) const;
  std::string str(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  std::vector<std::string> list(const std::string& key) const;  // a repeatable key; empty when not given
  double real(const std::string& key) const;
  bool flag(const std::string& key) const;
  // A string key that names one of `choices` (parse_choice).
  template <class E, class Range>
  E choice(const std::string& key, const Range& choices) const {
    return parse_choice<E>(key, str(key), choices);
  }

  // Every key given or defaulted, in declaration order, with its value as text (a repeated key's values
  // one per line).
  std::vector<std::pair<std::string, std::string>> values() const;

  // Every key with its resolved value, as an INI text that load() reads back to the same config.
  std::string resolved_ini() const;

  // Help text listing every key, its default and its meaning, grouped by section.
  static std::string describe_keys();

 private:
  boost::program_options::variables_map values_;
};

// The known key closest to `unknown` (edit distance, ignoring case), or "" when none is close.
std::string closest_key(const std::string& unknown, const std::vector<std::string>& known);

// Every declared key, in declaration order (config_keys.cpp).
std::vector<std::string> known_keys();

// Whether `key` defines the model (its shapes or its math: llm.*, encoder.*, adapter.*, lora.*, the
// features the encoder reads) rather than the run (lr, steps, data, logging): a checkpoint is only ever
// loaded with the model-defining keys it was trained with (config_keys.cpp).
bool model_defining(const std::string& key);

// Declares every key into `options` (config_keys.cpp).
void declare_config_keys(boost::program_options::options_description& options);

}  // namespace vtb
