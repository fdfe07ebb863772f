// safetensors: the reference implementation's published byte-exact vectors (safetensors/src/tensor.rs
// tests), round trips, and rejection of malformed files with errors naming file and tensor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "model/safetensors.h"

namespace vtb::model {
namespace {

std::string u64le(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s;
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "vtb_st_" + name; }

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

void expect_rejected(const std::string& name, const std::string& bytes, const std::string& message_part) {
  const std::string path = write_file(name, bytes);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << name << ": accepted";
  } catch (const SafetensorsError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(message_part), std::string::npos) << "expected '" << message_part << "' in: " << m;
  }
}

TEST(Safetensors, ReferenceVectorAttn0) {
  // tensor.rs test_serialization: "attn.0" F32 [1,2,3] = 0..5 → N = 64, no padding.
  const std::string bytes = serialize_safetensors({{"attn.0", torch::arange(6, torch::kFloat).view({1, 2, 3})}});
  const std::string json = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(json.size(), 64u);
  std::string expected = u64le(64) + json;
  for (float v = 0; v < 6; ++v) expected.append(reinterpret_cast<const char*>(&v), 4);
  EXPECT_EQ(bytes, expected);
}

TEST(Safetensors, ReferenceVectorPaddingTo72) {
  // tensor.rs test_forced_alignment: "attn0" [1,1,2,3] → 65-byte JSON padded with 7 spaces to 72.
  const std::string bytes = serialize_safetensors({{"attn0", torch::arange(6, torch::kFloat).view({1, 1, 2, 3})}});
  const std::string json = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(json.size(), 65u);
  EXPECT_EQ(bytes.substr(0, 8 + 72), u64le(72) + json + std::string(7, ' '));
}

TEST(Safetensors, ReferenceVectorEmpty) { EXPECT_EQ(serialize_safetensors({}), u64le(8) + "{}" + std::string(6, ' ')); }

TEST(Safetensors, ReferenceVectorMetadataOnly) {
  const std::string bytes = serialize_safetensors({}, {{"framework", "pt"}});
  EXPECT_EQ(bytes, u64le(40) + R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));
}

TEST(Safetensors, WriterOrdersByAlignmentThenName) {
  // The reference writer sorts by descending dtype then name: F64/I64 before F32 before BF16/F16 before U8.
  const std::string bytes = serialize_safetensors({{"b_u8", torch::zeros({3}, torch::kByte)},
                                                   {"a_bf16", torch::zeros({2}, torch::kBFloat16)},
                                                   {"z_f32", torch::zeros({1})},
                                                   {"c_i64", torch::zeros({1}, torch::kLong)}});
  const std::string path = write_file("order.safetensors", bytes);
  auto f = SafetensorsFile::open(path);
  std::vector<std::string> order;
  for (const auto& e : f->header().tensors) order.push_back(e.name);
  EXPECT_EQ(order, (std::vector<std::string>{"c_i64", "z_f32", "a_bf16", "b_u8"}));
}

TEST(Safetensors, RoundTripEveryTorchDtype) {
  std::vector<std::pair<std::string, at::Tensor>> tensors{{"f32", torch::randn({3, 4})},
                                                          {"f64", torch::randn({2}, torch::kDouble)},
                                                          {"bf16", torch::randn({5, 1}).to(torch::kBFloat16)},
                                                          {"f16", torch::randn({7}).to(torch::kHalf)},
                                                          {"i64", torch::arange(-3, 3, torch::kLong)},
                                                          {"i32", torch::arange(4, torch::kInt)},
                                                          {"u8", torch::arange(9, torch::kByte).view({3, 3})},
                                                          {"bool", torch::tensor({true, false, true})},
                                                          {"scalar", torch::scalar_tensor(2.5)},
                                                          {"empty", torch::zeros({0, 4})},
                                                          {"strided", torch::randn({4, 3}).t()}};
  const std::string path = temp_path("roundtrip.safetensors");
  write_safetensors(path, tensors, {{"format", "pt"}});
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->header().metadata.at("format"), "pt");
  for (const auto& [name, t] : tensors) {
    at::Tensor back = f->tensor(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back, t.contiguous())) << name;
  }
  // Views stay valid after the file object goes away (they hold the mapping).
  at::Tensor kept = f->tensor("f32");
  f.reset();
  EXPECT_TRUE(torch::equal(kept, tensors[0].second));
}

std::string file_with_header(const std::string& json, size_t data_bytes) {
  return u64le(json.size()) + json + std::string(data_bytes, '\0');
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_rejected("truncated", file_with_header(good, 4), "truncated");
  expect_rejected("extra_bytes", file_with_header(good, 12), "the file holds 12");
  expect_rejected("tiny", "abc", "only 3 bytes");
  expect_rejected("lying_length", u64le(1000) + good, "header length 1000 is impossible");
  expect_rejected("huge_length", u64le(uint64_t{1} << 40) + good, "is impossible");
  expect_rejected("bad_json", file_with_header(R"({"a":{"dtype":)", 0), "not valid JSON");
  expect_rejected("not_object", file_with_header("[1,2]", 0), "not a JSON object");
  expect_rejected("unknown_dtype", file_with_header(R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", 8),
                  "tensor 'a': unknown dtype 'F12'");
  expect_rejected("size_mismatch", file_with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                  "tensor 'a': holds 8 bytes but F32 of its shape needs 12");
  expect_rejected("overlap",
                  file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                   12),
                  "tensor 'b' overlaps");
  expect_rejected("gap",
                  file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                   12),
                  "gap in the data buffer before tensor 'b'");
  expect_rejected("duplicate",
                  file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                   8),
                  "tensor 'a' appears twice");
  expect_rejected("negative_shape", file_with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                  "non-negative integers");
  expect_rejected("reversed_offsets", file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4),
                  "end 0 < begin 4");
  expect_rejected("metadata_not_string", file_with_header(R"({"__metadata__":{"k":1}})", 0), "not a string");
  expect_rejected("unknown_field",
                  file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4),
                  "unexpected field 'x'");
}

TEST(Safetensors, DtypesWithoutTorchEquivalentParseButDoNotLoad) {
  const std::string path =
      write_file("u16.safetensors", file_with_header(R"({"a":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", 4));
  auto f = SafetensorsFile::open(path);
  EXPECT_THROW(f->tensor("a"), SafetensorsError);
  EXPECT_THROW(f->tensor("missing"), SafetensorsError);
}

}  // namespace
}  // namespace vtb::model
