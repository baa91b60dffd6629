// NumPy's .npy format, read and written by hand (Debian packages no npy library).
//
// A file is: the magic "\x93NUMPY", a version byte pair (1.0, 2.0 or 3.0), the header length
// (uint16 little-endian for 1.0, uint32 for 2.0/3.0), the header — an ASCII (3.0: UTF-8)
// Python dict literal ending in '\n', e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }
// — and the raw array bytes. The reader is strict: exactly those three keys, a little-endian
// (or byte-order-free) numeric or bool dtype, and exactly numel * itemsize bytes of data.
// Sizes are checked against ArrayLimits before anything is allocated, so a hostile header
// cannot make fetafix reserve gigabytes. Fortran-ordered arrays are reordered to C order.
// Spec: numpy/lib/format.py (NEP 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "common/limits.h"
#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::data {

// Refuse absurd arrays up front. The defaults are far above any sample a model takes (a 4K
// RGB float image is 100 MB) and far below what would take the machine down.
inline constexpr uint64_t kDefaultMaxArrayBytes = uint64_t{1} << 30;   // 1 GiB per array
inline constexpr uint64_t kDefaultMaxSampleBytes = uint64_t{2} << 30;  // 2 GiB per sample file (all its arrays)
inline constexpr int kMaxArrayRank = 32;                               // numpy's own NPY_MAXDIMS
inline constexpr size_t kMaxNpyHeaderBytes = 10000;                    // numpy's default max_header_size

struct ArrayLimits {
  uint64_t max_array_bytes = kDefaultMaxArrayBytes;
  uint64_t max_sample_bytes = kDefaultMaxSampleBytes;
};

// The limits the CLI applies (docs/cli.md, "Resource limits"): one array (a .npy, one array of an
// .npz, a decoded .wav) may take the tensor limit (--max-tensor-bytes), all arrays of one sample
// file together twice that.
ArrayLimits array_limits(const ResourceLimits& limits);

// "over the tensor limit of 1.0 GiB (--max-tensor-bytes)": the end of every refusal above.
std::string array_limit_text(const ArrayLimits& limits);
std::string sample_limit_text(const ArrayLimits& limits);

// What the header says, before any data is read.
struct NpyHeader {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
  bool fortran_order = false;
  size_t data_offset = 0;  // bytes before the array data
  uint64_t data_bytes = 0; // numel * itemsize
};

// Parses the header at the start of `bytes`. `what` names the file (or "a.npz: x.npy") in errors.
Result<NpyHeader> parse_npy_header(std::span<const std::byte> bytes, const std::string& what,
                                   const ArrayLimits& limits = {});

// The whole array; the data must follow the header exactly (no missing or trailing bytes).
Result<Tensor> parse_npy(std::span<const std::byte> bytes, const std::string& what, const ArrayLimits& limits = {});

// Reads a .npy file (the size is checked before the file is read).
Result<Tensor> read_npy(const std::filesystem::path& path, const ArrayLimits& limits = {});

// A version 1.0 .npy image of `t` (C order, little-endian), as numpy.save writes it.
std::string encode_npy(const Tensor& t);

// The DType of a numpy dtype string ("<f4", "|u1", ...: numpy's dtype.str); `what` names the
// array in errors (big-endian, string, object and structured dtypes are refused with the reason).
Result<DType> dtype_of_npy_descr(std::string_view descr, const std::string& what);

// The numpy dtype string of a DType ("<f4", "|u1", ...); empty when numpy has none (bfloat16).
std::string npy_descr(DType t);

}  // namespace fetafix::data
