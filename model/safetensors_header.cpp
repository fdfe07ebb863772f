#include "model/safetensors_header.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace vtb::model {
namespace {

using nlohmann::json;

// The reference Dtype enum, in its order (= increasing alignment), with element sizes.
struct DtypeSize {
  const char* name;
  size_t size;
};
constexpr DtypeSize kDtypes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
                                 {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
                                 {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};

const DtypeSize* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

[[noreturn]] void fail(const std::string& file, const std::string& what) { throw SafetensorsError(file + ": " + what); }

TensorEntry parse_entry(const std::string& file, const std::string& name, const json& j) {
  auto bad = [&](const std::string& what) { fail(file, "tensor '" + name + "': " + what); };
  if (!j.is_object()) bad("entry is not a JSON object");
  for (const auto& [key, value] : j.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets") bad("unexpected field '" + key + "'");
  if (!j.contains("dtype") || !j["dtype"].is_string()) bad("missing or non-string \"dtype\"");
  if (!j.contains("shape") || !j["shape"].is_array()) bad("missing or non-array \"shape\"");
  if (!j.contains("data_offsets") || !j["data_offsets"].is_array() || j["data_offsets"].size() != 2)
    bad("\"data_offsets\" must be [begin, end]");

  TensorEntry e;
  e.name = name;
  e.dtype = j["dtype"].get<std::string>();
  const DtypeSize* info = find_dtype(e.dtype);
  if (info == nullptr) bad("unknown dtype '" + e.dtype + "'");
  uint64_t bytes = info->size;
  for (const auto& d : j["shape"]) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    const uint64_t n = d.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, n, &bytes)) bad("shape overflows");
    e.shape.push_back(static_cast<int64_t>(n));
  }
  for (const auto& o : j["data_offsets"])
    if (!o.is_number_unsigned()) bad("data_offsets must be non-negative integers");
  e.begin = j["data_offsets"][0].get<uint64_t>();
  e.end = j["data_offsets"][1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets end " + std::to_string(e.end) + " < begin " + std::to_string(e.begin));
  if (e.end - e.begin != bytes)
    bad("holds " + std::to_string(e.end - e.begin) + " bytes but " + e.dtype + " of its shape needs " +
        std::to_string(bytes));
  return e;
}

}  // namespace

size_t safetensors_dtype_rank(const std::string& dtype) {
  for (size_t i = 0; i < std::size(kDtypes); ++i)
    if (dtype == kDtypes[i].name) return i;
  throw SafetensorsError("unknown safetensors dtype '" + dtype + "'");
}

size_t safetensors_dtype_size(const std::string& dtype) {
  const DtypeSize* info = find_dtype(dtype);
  if (info == nullptr) throw SafetensorsError("unknown safetensors dtype '" + dtype + "'");
  return info->size;
}

SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_bytes, const std::string& file) {
  // Duplicate names would silently keep the last entry in the JSON library: catch them while parsing.
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json root;
  try {
    root = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail(file, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail(file, "tensor '" + duplicate + "' appears twice in the header");
  if (!root.is_object()) fail(file, "header is not a JSON object");

  SafetensorsHeader header;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(file, "__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(file, "__metadata__ value of '" + k + "' is not a string");
        header.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(parse_entry(file, name, value));
  }

  std::sort(header.tensors.begin(), header.tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& e : header.tensors) {
    if (e.begin > expected)
      fail(file, "gap in the data buffer before tensor '" + e.name + "' (bytes " + std::to_string(expected) + ".." +
                     std::to_string(e.begin) + " belong to no tensor)");
    if (e.begin < expected)
      fail(file, "tensor '" + e.name + "' overlaps the previous tensor (begins at " + std::to_string(e.begin) +
                     ", previous ends at " + std::to_string(expected) + ")");
    expected = e.end;
  }
  if (expected != data_bytes)
    fail(file, "the header describes " + std::to_string(expected) + " data bytes but the file holds " +
                   std::to_string(data_bytes) + (expected > data_bytes ? " (truncated?)" : ""));
  return header;
}

}  // namespace vtb::model
