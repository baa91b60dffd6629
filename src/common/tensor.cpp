#include "common/tensor.h"

#include <fmt/format.h>

#include <stdexcept>

namespace fetafix {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kUInt8: case DType::kInt8: case DType::kBool: return 1;
    case DType::kUInt16: case DType::kInt16: case DType::kFloat16: case DType::kBFloat16: return 2;
    case DType::kInt64: case DType::kUInt64: case DType::kFloat64: return 8;
    case DType::kUndefined: return 0;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUInt16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kBFloat16: return "bfloat16";
    case DType::kUndefined: return "undefined";
  }
  return "unknown";
}

int64_t shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<float> Tensor::to_float() const {
  const size_t n = static_cast<size_t>(numel());
  std::vector<float> out(n);
  auto conv = [&](auto* p) { for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]); };
  switch (dtype) {
    case DType::kFloat32: conv(data<float>()); break;
    case DType::kFloat64: conv(data<double>()); break;
    case DType::kUInt8: conv(data<uint8_t>()); break;
    case DType::kInt8: conv(data<int8_t>()); break;
    case DType::kBool: conv(data<uint8_t>()); break;
    case DType::kUInt16: conv(data<uint16_t>()); break;
    case DType::kInt16: conv(data<int16_t>()); break;
    case DType::kInt32: conv(data<int32_t>()); break;
    case DType::kUInt32: conv(data<uint32_t>()); break;
    case DType::kInt64: conv(data<int64_t>()); break;
    case DType::kUInt64: conv(data<uint64_t>()); break;
    case DType::kFloat16:
      for (size_t i = 0; i < n; ++i) out[i] = half_to_float(data<uint16_t>()[i]);
      break;
    case DType::kBFloat16:
      for (size_t i = 0; i < n; ++i) {
        uint32_t bits = static_cast<uint32_t>(data<uint16_t>()[i]) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    case DType::kUndefined:
      throw std::logic_error("Tensor::to_float on an undefined dtype");
  }
  return out;
}

}  // namespace fetafix
