// HDF5 checkpoint files: exact round trips, attributes, readable by h5dump and h5py (independent readers),
// and a flipped byte caught by fletcher32 naming the dataset.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "ckpt/hdf5_io.h"

namespace vtb::ckpt {
namespace {

std::string temp(const std::string& name) { return ::testing::TempDir() + "vtb_h5_" + name; }

TEST(Hdf5, RoundTripTensorsAndAttributes) {
  const std::string path = temp("roundtrip.h5");
  torch::manual_seed(0);
  const at::Tensor w = torch::randn({300, 70});
  const at::Tensor bf = torch::randn({5, 3}).to(torch::kBFloat16);
  const at::Tensor steps = torch::arange(7, torch::kLong);
  const at::Tensor scalar = torch::scalar_tensor(2.5, torch::kDouble);
  const at::Tensor empty = torch::zeros({0, 4});
  {
    Hdf5Writer out(path);
    out.write("/model/encoder.layers.0.linear.weight", w);
    out.write("/optim/encoder.layers.0.linear.weight/exp_avg", w * 2);
    out.write("/model/bf16", bf);
    out.write("/train/steps", steps);
    out.write("/train/scalar", scalar);
    out.write("/train/empty", empty);
    out.attribute("/train", "config", std::string("[run]\ndir = runs/x\n"));
    out.attribute("/train", "step", int64_t{42});
    out.attribute("/", "format_version", int64_t{1});
    out.attribute("/train", "lr", 1e-4);
    out.close();
  }
  Hdf5Reader in(path);
  EXPECT_TRUE(torch::equal(in.read("/model/encoder.layers.0.linear.weight"), w));
  EXPECT_TRUE(torch::equal(in.read("/optim/encoder.layers.0.linear.weight/exp_avg"), w * 2));
  EXPECT_TRUE(torch::equal(in.read("/model/bf16"), bf));
  EXPECT_EQ(in.read("/model/bf16").scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(in.read("/train/steps"), steps));
  EXPECT_TRUE(torch::equal(in.read("/train/scalar"), scalar));
  EXPECT_EQ(in.read("/train/empty").sizes(), empty.sizes());
  EXPECT_EQ(in.string_attribute("/train", "config"), "[run]\ndir = runs/x\n");
  EXPECT_EQ(in.int_attribute("/train", "step"), 42);
  EXPECT_EQ(in.int_attribute("/", "format_version"), 1);
  EXPECT_DOUBLE_EQ(in.real_attribute("/train", "lr"), 1e-4);
  EXPECT_TRUE(in.exists("/model/bf16"));
  EXPECT_FALSE(in.exists("/model/nope"));
  EXPECT_FALSE(in.exists("/nogroup/x"));
  EXPECT_EQ(in.datasets("/model"), (std::vector<std::string>{"/model/bf16", "/model/encoder.layers.0.linear.weight"}));
  // Six tensors and the checksummed copies of the four attributes (not of bf16's dtype marker).
  EXPECT_EQ(in.datasets().size(), 10u);
  EXPECT_TRUE(in.checksummed_metadata());
  EXPECT_EQ(in.datasets(kChecksummedGroup),
            (std::vector<std::string>{"/checksummed/format_version", "/checksummed/train/config",
                                      "/checksummed/train/lr", "/checksummed/train/step"}));

  // Independent readers: h5dump parses every object; h5py sees the same values.
  EXPECT_EQ(std::system(("h5dump " + path + " > /dev/null").c_str()), 0);
  const std::string py = "/usr/bin/python3 -c \"import h5py, numpy as np; f = h5py.File('" + path +
                         "', 'r'); w = f['/model/encoder.layers.0.linear.weight'][...]; "
                         "assert w.shape == (300, 70) and w.dtype == np.float32; "
                         "assert abs(float(w.sum()) - " +
                         std::to_string(w.sum().item<double>()) +
                         ") < 1e-2; "
                         "assert list(f['/train/steps'][...]) == list(range(7)); "
                         "assert f['/train'].attrs['step'] == 42; "
                         "assert f['/model/encoder.layers.0.linear.weight'].fletcher32\"";
  EXPECT_EQ(std::system(py.c_str()), 0) << py;
}

TEST(Hdf5, FlippedByteFailsTheReadOfThatDatasetOnly) {
  const std::string path = temp("flip.h5");
  {
    Hdf5Writer out(path);
    out.write("/model/pattern", torch::full({4096}, 1234.5678f));
    out.write("/model/other", torch::ones({100}));
    out.close();
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const float v = 1234.5678f;
  const std::string needle(reinterpret_cast<const char*>(&v), 4);
  const size_t at = bytes.find(needle + needle + needle + needle);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 4 * 100 + 1] ^= 0x10;  // inside the 101st value
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;

  Hdf5Reader in(path);
  EXPECT_TRUE(torch::equal(in.read("/model/other"), torch::ones({100})));
  try {
    in.read("/model/pattern");
    FAIL() << "the flipped byte went unnoticed";
  } catch (const Hdf5Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": dataset '/model/pattern' is corrupt"), std::string::npos)
        << e.what();
  }
}

// HDF5 attributes have no checksum: one changed behind vtb's back (here by h5py, as a flipped byte would)
// no longer matches its checksummed copy, and reading it says so. A file without copies (format 1,
// written here by h5py) reads as it is.
TEST(Hdf5, AnAttributeThatDiffersFromItsCopyIsAnError) {
  const std::string path = temp("attr.h5"), old = temp("format1.h5");
  {
    Hdf5Writer out(path);
    out.attribute("/train", "step", int64_t{42});
    out.attribute("/train", "config", std::string("[train]\nlr = 0.001\n"));
    out.close();
  }
  const std::string py = "/usr/bin/python3 -c \"import h5py, numpy as np; f = h5py.File('" + path +
                         "', 'r+'); f['/train'].attrs['step'] = np.int64(43); f.close(); g = h5py.File('" + old +
                         "', 'w'); g.create_group('train').attrs['step'] = np.int64(7)\"";
  ASSERT_EQ(std::system(py.c_str()), 0) << py;
  Hdf5Reader in(path);
  EXPECT_EQ(in.string_attribute("/train", "config"), "[train]\nlr = 0.001\n");
  try {
    in.int_attribute("/train", "step");
    FAIL() << "a changed attribute was read";
  } catch (const Hdf5Error& e) {
    EXPECT_NE(std::string(e.what()).find("/train@step differs from its checksummed copy /checksummed/train/step"),
              std::string::npos)
        << e.what();
  }
  Hdf5Reader format1(old);
  EXPECT_FALSE(format1.checksummed_metadata());
  EXPECT_EQ(format1.int_attribute("/train", "step"), 7);
}

TEST(Hdf5, MissingOrForeignFilesAreErrors) {
  EXPECT_THROW(Hdf5Reader("/nonexistent.h5"), Hdf5Error);
  const std::string junk = temp("junk.h5");
  std::ofstream(junk) << "not hdf5";
  EXPECT_THROW(Hdf5Reader{junk}, Hdf5Error);
}

}  // namespace
}  // namespace vtb::ckpt
