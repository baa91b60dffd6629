// A dense host tensor: the one currency between data, runtime and analyses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fetafix {

// Values equal to onnx::TensorProto_DataType so conversions are casts.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

size_t dtype_size(DType t);            // 0 for kUndefined
std::string_view dtype_name(DType t);  // "float32", "uint8", ...

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kFloat32; }
template <> constexpr DType dtype_of<double>() { return DType::kFloat64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kUInt8; }
template <> constexpr DType dtype_of<int8_t>() { return DType::kInt8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kInt64; }

// Product of dims; dims must be >= 0.
int64_t shape_numel(std::span<const int64_t> shape);
std::string shape_to_string(std::span<const int64_t> shape);  // "[1,3,224,224]", -1 shown as "?"

struct Tensor {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;  // row-major, tightly packed

  Tensor() = default;
  Tensor(DType t, std::vector<int64_t> s)
      : dtype(t), shape(std::move(s)), bytes(static_cast<size_t>(shape_numel(shape)) * dtype_size(t)) {}

  int64_t numel() const { return shape_numel(shape); }
  template <class T> T* data() { return reinterpret_cast<T*>(bytes.data()); }
  template <class T> const T* data() const { return reinterpret_cast<const T*>(bytes.data()); }
  template <class T> std::span<T> span() { return {data<T>(), static_cast<size_t>(numel())}; }
  template <class T> std::span<const T> span() const { return {data<T>(), static_cast<size_t>(numel())}; }

  // Values converted to float (float16/bfloat16/ints included); for metrics.
  std::vector<float> to_float() const;
};

}  // namespace fetafix
