#include "data/npy.h"

#include <cstring>
#include <fstream>
#include <string_view>

#include "common/fs.h"

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

struct DescrEntry {
  std::string_view code;  // without the byte-order character
  DType dtype;
};
constexpr DescrEntry kDescrs[] = {
    {"f2", DType::kFloat16}, {"f4", DType::kFloat32}, {"f8", DType::kFloat64}, {"i1", DType::kInt8},
    {"i2", DType::kInt16},   {"i4", DType::kInt32},   {"i8", DType::kInt64},   {"u1", DType::kUInt8},
    {"u2", DType::kUInt16},  {"u4", DType::kUInt32},  {"u8", DType::kUInt64},  {"b1", DType::kBool},
};

// The header dict, parsed by hand: a cursor over the text with one method per token kind.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  Status parse(NpyHeader& out) {
    bool have_descr = false, have_order = false, have_shape = false;
    FETAFIX_TRY_STATUS(expect('{'));
    while (true) {
      skip_spaces();
      if (peek() == '}') break;
      std::string key;
      FETAFIX_TRY_STATUS(string_literal(key));
      FETAFIX_TRY_STATUS(expect(':'));
      skip_spaces();
      if (key == "descr" && !have_descr) {
        have_descr = true;
        std::string descr;
        FETAFIX_TRY_STATUS(string_literal(descr));
        FETAFIX_ASSIGN_OR_RETURN(out.dtype, dtype_of_npy_descr(descr, what_));
      } else if (key == "fortran_order" && !have_order) {
        have_order = true;
        FETAFIX_TRY_STATUS(boolean(out.fortran_order));
      } else if (key == "shape" && !have_shape) {
        have_shape = true;
        FETAFIX_TRY_STATUS(tuple(out.shape));
      } else {
        return fail(fmt::format("unexpected or repeated key '{}'", key));
      }
      skip_spaces();
      if (peek() == ',') { ++i_; continue; }
      if (peek() != '}') return fail("expected ',' or '}'");
    }
    ++i_;  // '}'
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
    if (i_ + 1 != s_.size() || s_[i_] != '\n') return fail("the dict must be followed only by spaces and a newline");
    if (!have_descr || !have_order || !have_shape)
      return fail("it needs the keys 'descr', 'fortran_order' and 'shape'");
    return {};
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_spaces() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  Error fail(const std::string& why) const {
    return make_error("{}: not a valid .npy header ({} at byte {} of the header)", what_, why, i_);
  }
  Status expect(char c) {
    skip_spaces();
    if (peek() != c) return fail(fmt::format("expected '{}'", c));
    ++i_;
    return {};
  }
  // A quoted string without escapes: all the header's strings are short identifiers.
  Status string_literal(std::string& out) {
    skip_spaces();
    const char quote = peek();
    if (quote != '\'' && quote != '"') return fail("expected a quoted string");
    const size_t end = s_.find(quote, i_ + 1);
    if (end == std::string_view::npos || end - i_ > 64) return fail("unterminated string");
    out.assign(s_.substr(i_ + 1, end - i_ - 1));
    for (char c : out)
      if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return fail("unsupported character in a string");
    i_ = end + 1;
    return {};
  }
  Status boolean(bool& out) {
    if (s_.substr(i_, 4) == "True") { out = true; i_ += 4; return {}; }
    if (s_.substr(i_, 5) == "False") { out = false; i_ += 5; return {}; }
    return fail("expected True or False");
  }
  // (), (n,), (n, m), (n, m,) — non-negative integers; Python 2 numpy wrote longs as "3L".
  Status tuple(std::vector<int64_t>& dims) {
    FETAFIX_TRY_STATUS(expect('('));
    while (true) {
      skip_spaces();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') return fail("expected a dimension");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (int64_t{1} << 58)) return fail("a dimension is too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (peek() == 'L') ++i_;
      dims.push_back(v);
      if (dims.size() > static_cast<size_t>(kMaxArrayRank)) return fail("more than 32 dimensions");
      skip_spaces();
      if (peek() == ',') { ++i_; continue; }
      if (peek() != ')') return fail("expected ',' or ')'");
    }
    ++i_;
    return {};
  }
  std::string_view s_;
  const std::string& what_;
  size_t i_ = 0;
};

uint32_t read_le(const std::byte* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

// Fortran (column-major) data -> C order: element (i0..ir-1) sits at sum(i_k * fstride_k).
void fortran_to_c(const Tensor& in, Tensor& out) {
  const size_t item = dtype_size(in.dtype), rank = in.shape.size();
  const int64_t n = in.numel();
  std::vector<int64_t> fstride(rank, 1), index(rank, 0);
  for (size_t k = 1; k < rank; ++k) fstride[k] = fstride[k - 1] * in.shape[k - 1];
  for (int64_t c = 0; c < n; ++c) {
    int64_t f = 0;
    for (size_t k = 0; k < rank; ++k) f += index[k] * fstride[k];
    std::memcpy(out.bytes.data() + c * item, in.bytes.data() + f * item, item);
    for (size_t k = rank; k-- > 0;) {  // advance the C-order index, last axis fastest
      if (++index[k] < in.shape[k]) break;
      index[k] = 0;
    }
  }
}

}  // namespace

// '<' little-endian; '|' (no byte order) and '>' only for one-byte types, where order is moot.
Result<DType> dtype_of_npy_descr(std::string_view d, const std::string& what) {
  for (const auto& e : kDescrs) {
    if (d.size() != 3 || d.substr(1) != e.code) continue;
    const bool one_byte = dtype_size(e.dtype) == 1;
    if (d[0] == '<' || (one_byte && (d[0] == '|' || d[0] == '>'))) return e.dtype;
    if (d[0] == '>')
      return make_error("{}: the array is big-endian ('{}'); save it little-endian "
                        "(arr.astype(arr.dtype.newbyteorder('<')))", what, d);
  }
  return make_error("{}: unsupported array dtype '{}' (numeric or bool arrays only: float16/32/64, int8..64, "
                    "uint8..64, bool; little-endian)", what, d);
}

std::string npy_descr(DType t) {
  for (const auto& e : kDescrs)
    if (e.dtype == t) return fmt::format("{}{}", dtype_size(t) == 1 ? '|' : '<', e.code);
  return {};
}

Result<NpyHeader> parse_npy_header(std::span<const std::byte> bytes, const std::string& what, const ArrayLimits& limits) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0)
    return make_error("{}: not a .npy file (no \\x93NUMPY magic)", what);
  const int major = static_cast<int>(bytes[6]), minor = static_cast<int>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    return make_error("{}: unsupported .npy format version {}.{} (1.0, 2.0 and 3.0 are read)", what, major, minor);
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + len_bytes) return make_error("{}: truncated .npy header", what);
  const size_t header_len = read_le(bytes.data() + 8, len_bytes);
  if (header_len > kMaxNpyHeaderBytes)
    return make_error("{}: .npy header of {} bytes is over the {} byte limit (kMaxNpyHeaderBytes)", what, header_len,
                      kMaxNpyHeaderBytes);
  NpyHeader h;
  h.data_offset = 8 + len_bytes + header_len;
  if (bytes.size() < h.data_offset) return make_error("{}: truncated .npy header", what);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8 + len_bytes, header_len);
  FETAFIX_TRY_STATUS(HeaderParser(text, what).parse(h));
  uint64_t numel = 1;
  for (int64_t d : h.shape)
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) numel = UINT64_MAX;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(h.dtype)), &h.data_bytes)) h.data_bytes = UINT64_MAX;
  if (h.data_bytes > limits.max_array_bytes)
    return make_error("{}: array of shape {} ({}) would take {} bytes, {}", what, shape_to_string(h.shape),
                      dtype_name(h.dtype), h.data_bytes, array_limit_text(limits));
  return h;
}

Result<Tensor> parse_npy(std::span<const std::byte> bytes, const std::string& what, const ArrayLimits& limits) {
  FETAFIX_ASSIGN_OR_RETURN(NpyHeader h, parse_npy_header(bytes, what, limits));
  const uint64_t have = bytes.size() - h.data_offset;
  if (have != h.data_bytes)
    return make_error("{}: array of shape {} ({}) needs {} data bytes, the file has {}", what, shape_to_string(h.shape),
                      dtype_name(h.dtype), h.data_bytes, have);
  Tensor t(h.dtype, h.shape);
  if (!h.fortran_order || h.shape.size() < 2 || h.data_bytes == 0) {  // an empty array has no order to undo
    if (h.data_bytes) std::memcpy(t.bytes.data(), bytes.data() + h.data_offset, h.data_bytes);
    return t;
  }
  Tensor f(h.dtype, h.shape);
  std::memcpy(f.bytes.data(), bytes.data() + h.data_offset, h.data_bytes);
  fortran_to_c(f, t);
  return t;
}

Result<Tensor> read_npy(const fs::path& path, const ArrayLimits& limits) {
  FETAFIX_TRY_STATUS(check_regular_file(path));  // a FIFO never hangs the run, a folder is named as one
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return make_error("{}: cannot read: {}", path.string(), ec.message());
  if (size > limits.max_array_bytes + kMaxNpyHeaderBytes + 16)
    return make_error("{}: {} bytes, {}", path.string(), size, array_limit_text(limits));
  std::ifstream in(path, std::ios::binary);
  std::vector<std::byte> bytes(size);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
    return make_error("{}: cannot read the file", path.string());
  return parse_npy(bytes, path.string(), limits);
}

ArrayLimits array_limits(const ResourceLimits& limits) {
  const uint64_t sample = limits.max_tensor_bytes > UINT64_MAX / 2 ? UINT64_MAX : 2 * limits.max_tensor_bytes;
  return {limits.max_tensor_bytes, sample};
}

std::string array_limit_text(const ArrayLimits& limits) {
  return fmt::format("over the tensor limit of {} (--max-tensor-bytes)", bytes_text(limits.max_array_bytes));
}

std::string sample_limit_text(const ArrayLimits& limits) {
  return fmt::format("over the limit of {} for one sample file (twice --max-tensor-bytes)",
                     bytes_text(limits.max_sample_bytes));
}

std::string encode_npy(const Tensor& t) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': (", npy_descr(t.dtype));
  for (int64_t d : t.shape) dict += fmt::format("{}, ", d);
  if (t.shape.size() > 1) dict.resize(dict.size() - 2);  // "(1, 3)" and "(3,)", like numpy
  else if (t.shape.size() == 1) dict.pop_back();
  dict += "), }";
  // Pad with spaces so the data starts on a 64-byte boundary, newline last.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

}  // namespace fetafix::data
