// Errors as values: every fallible operation in fetafix returns Result<T> or Status.
// An Error carries a one-line, user-facing message that already names the file or object at
// fault, and what kind of failure it is. What a kind means to a user (the process exit code) is
// the CLI's business (src/cli/pair_options.h: fail), not the layer that found the problem.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace fetafix {

enum class ErrorKind {
  kBadInput,  // the input is wrong or unusable (a missing file, a model fetafix cannot run, a bad option)
  kInternal,  // fetafix or its runtime failed on input it should handle
};

struct Error {
  std::string message;
  ErrorKind kind = ErrorKind::kBadInput;
};

template <class... Args>
Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...), ErrorKind::kBadInput};
}

template <class... Args>
Error make_internal_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...), ErrorKind::kInternal};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}      // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace fetafix

// Propagates an error from a Result/Status expression; binds the value otherwise.
#define FETAFIX_CONCAT_INNER(a, b) a##b
#define FETAFIX_CONCAT(a, b) FETAFIX_CONCAT_INNER(a, b)
#define FETAFIX_TRY_STATUS(expr)                   \
  do {                                             \
    auto _st = (expr);                             \
    if (!_st.ok()) return _st.error();             \
  } while (0)
#define FETAFIX_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.error();                  \
  lhs = std::move(tmp).value()
#define FETAFIX_ASSIGN_OR_RETURN(lhs, expr) \
  FETAFIX_ASSIGN_OR_RETURN_IMPL(FETAFIX_CONCAT(_res_, __LINE__), lhs, expr)
