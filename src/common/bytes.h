// A small binary codec for what ranks exchange (common/communicator.h): numbers in the host's
// own representation (every rank runs the same binary on the same kind of machine), strings and
// vectors with their length first. The reader never reads past the end: a short or garbled
// buffer makes ok() false and every later read return zeros.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace fetafix {

class ByteWriter {
 public:
  template <class T>
    requires std::is_arithmetic_v<T> || std::is_enum_v<T>
  void put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void put(std::string_view s) {
    put(static_cast<uint64_t>(s.size()));
    out_.append(s);
  }
  void put(const std::string& s) { put(std::string_view(s)); }
  void put(const char* s) { put(std::string_view(s)); }
  template <class T>
  void put(const std::vector<T>& v) {
    put(static_cast<uint64_t>(v.size()));
    if constexpr (std::is_arithmetic_v<T>) {
      out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    } else {
      for (const auto& x : v) put(x);
    }
  }
  void put(const std::vector<bool>& v) {
    put(static_cast<uint64_t>(v.size()));
    for (bool b : v) put(static_cast<uint8_t>(b));
  }

  const std::string& bytes() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}

  template <class T>
    requires std::is_arithmetic_v<T> || std::is_enum_v<T>
  T get() {
    T v{};
    if (!take(sizeof(T))) return v;
    std::memcpy(&v, in_.data() + at_ - sizeof(T), sizeof(T));
    return v;
  }
  void get(std::string& s) {
    const uint64_t n = get<uint64_t>();
    if (!take(n)) return;
    s.assign(in_.data() + at_ - n, n);
  }
  std::string get_string() {
    std::string s;
    get(s);
    return s;
  }
  template <class T>
    requires std::is_arithmetic_v<T>
  void get(std::vector<T>& v) {
    const uint64_t n = get<uint64_t>();
    if (n > remaining() / sizeof(T) || !take(n * sizeof(T))) return fail();
    v.resize(n);
    std::memcpy(v.data(), in_.data() + at_ - n * sizeof(T), n * sizeof(T));
  }
  void get(std::vector<bool>& v) {
    const uint64_t n = get<uint64_t>();
    if (n > remaining()) return fail();
    v.resize(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = get<uint8_t>() != 0;
  }
  // A count of items still to read, checked against what is left (each item takes a byte at least).
  uint64_t get_count() {
    const uint64_t n = get<uint64_t>();
    if (n > remaining()) fail();
    return ok_ ? n : 0;
  }

  bool ok() const { return ok_; }
  bool done() const { return ok_ && at_ == in_.size(); }
  size_t remaining() const { return in_.size() - at_; }

 private:
  bool take(uint64_t n) {
    if (!ok_ || n > remaining()) {
      fail();
      return false;
    }
    at_ += n;
    return true;
  }
  void fail() { ok_ = false; }

  std::string_view in_;
  size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace fetafix
