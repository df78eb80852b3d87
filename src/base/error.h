#pragma once
// Error handling for fathom.
//
// Expected failures (request validation, config and model-file parsing) return Result<T>.
// Unexpected failures throw fathom::Exception. Exceptions are caught in exactly two places: the HTTP
// handler wrapper (turned into an OpenAI-style error) and the engine step (fails the affected requests).
#include <cassert>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace fathom {

// Error categories. server/ maps each to an HTTP status (see server/http_errors.cpp).
enum class ErrorCode {
  kInvalidArgument,  // bad request input: 400
  kNotFound,         // unknown model / file / route: 404
  kUnsupported,      // the model or device cannot do this: 400
  kTooLarge,         // over a stated limit: 400 or 413
  kLoadFailed,       // model directory could not be loaded
  kOutOfMemory,      // device or budget cannot hold it
  kOverloaded,       // queue full: 429
  kTimeout,          // deadline exceeded: 504
  kUnavailable,      // not ready / shutting down: 503
  kInternal,         // a bug or device failure: 500
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string param;  // the request parameter at fault, if any (OpenAI's "param")
};

inline Error make_error(ErrorCode code, std::string message, std::string param = {}) {
  return Error{code, std::move(message), std::move(param)};
}

// An unexpected failure; carries an ErrorCode so the catch sites can still answer well.
class Exception : public std::runtime_error {
 public:
  Exception(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Either a value or an Error. Minimal on purpose (C++20 has no std::expected).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  void check() const {
    if (!ok()) throw Exception(std::get<1>(v_).code, std::get<1>(v_).message);
  }
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

// Runs `f` and turns a fathom::Exception it throws into the equivalent Status. For call sites that
// bridge throwing code (device checks) into Status-returning APIs.
template <typename F>
Status status_from_exceptions(F&& f) {
  try {
    f();
    return Status::Ok();
  } catch (const Exception& e) {
    return make_error(e.code(), e.what());
  }
}

}  // namespace fathom

// Propagate an error from an expression returning Result<T> or Status.
#define FATHOM_TRY(expr)                          \
  do {                                            \
    auto&& fathom_try_r_ = (expr);                \
    if (!fathom_try_r_.ok()) return fathom_try_r_.error(); \
  } while (0)

#define FATHOM_CONCAT_INNER(a, b) a##b
#define FATHOM_CONCAT(a, b) FATHOM_CONCAT_INNER(a, b)
// Declare `lhs` from a Result<T>, returning its error if it failed.
#define FATHOM_ASSIGN_OR_RETURN(lhs, expr)                         \
  auto FATHOM_CONCAT(fathom_r_, __LINE__) = (expr);                \
  if (!FATHOM_CONCAT(fathom_r_, __LINE__).ok())                    \
    return FATHOM_CONCAT(fathom_r_, __LINE__).error();             \
  lhs = std::move(FATHOM_CONCAT(fathom_r_, __LINE__)).value()
