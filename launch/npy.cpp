#include "launch/npy.h"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <stdexcept>
#include <vector>

#include "io/atomic_file.h"

namespace vtb {

void write_npy(const std::string& path, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  std::string descr;
  switch (t.scalar_type()) {
    case at::kFloat:
      descr = "<f4";
      break;
    case at::kDouble:
      descr = "<f8";
      break;
    case at::kLong:
      descr = "<i8";
      break;
    default:
      throw std::invalid_argument("write_npy: unsupported dtype " + std::string(at::toString(t.scalar_type())));
  }
  std::string shape;  // Python tuple syntax: "()", "(3,)", "(3, 4)"
  for (int64_t i = 0; i < t.dim(); ++i) shape += (i ? ", " : "") + std::to_string(t.size(i));
  shape = "(" + shape + (t.dim() == 1 ? ",)" : ")");
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  bytes += static_cast<char>(len & 0xff);
  bytes += static_cast<char>(len >> 8);
  bytes += header;
  bytes.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel() * t.element_size()));
  io::write_file_atomically(path, bytes);
}

at::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto fail = [&](const std::string& why) { return std::runtime_error(path + ": not a .npy vtb reads: " + why); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw fail("no NUMPY magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (major != 1 && major != 2) throw fail("format version " + std::to_string(major));
  size_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i) header_len |= size_t{static_cast<unsigned char>(bytes[8 + i])} << (8 * i);
  const size_t data_at = 8 + len_bytes + header_len;
  if (data_at > bytes.size()) throw fail("header longer than the file");
  const std::string header = bytes.substr(8 + len_bytes, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<|]f[48])'"))) throw fail("dtype is not <f4 or <f8");
  const bool f64 = m[1].str().back() == '8';
  if (!std::regex_search(header, std::regex("'fortran_order':\\s*False"))) throw fail("Fortran order");
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([0-9,\\s]*)\\)"))) throw fail("no shape");
  std::vector<int64_t> shape;
  const std::string dims = m[1].str();
  const std::regex digits("[0-9]+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), digits), end; it != end; ++it)
    shape.push_back(std::stoll(it->str()));
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  const size_t want = static_cast<size_t>(count) * (f64 ? 8 : 4);
  if (bytes.size() - data_at != want)
    throw fail("shape needs " + std::to_string(want) + " data bytes, the file has " +
               std::to_string(bytes.size() - data_at));
  at::Tensor t = at::empty(shape, f64 ? at::kDouble : at::kFloat);
  std::memcpy(t.data_ptr(), bytes.data() + data_at, want);
  return t.to(at::kFloat);
}

}  // namespace vtb
