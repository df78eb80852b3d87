#pragma once
// OpenAI-style error responses: {"error":{"message","type","param","code"}} with the matching HTTP status.
//
// Handlers report a failure by throwing ApiException (or a fathom::Exception); the handler wrapper in
// router.cpp catches both and every other exception, so nothing a client sends can crash the server.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace httplib {
struct Response;
}

namespace fathom::server {

struct ApiError {
  int status = 500;
  std::string message;
  std::string type;   // "invalid_request_error", "rate_limit_error", "server_error"
  std::string param;  // the request field at fault; empty -> null
  std::string code;   // machine-readable reason; empty -> null
};

class ApiException : public std::runtime_error {
 public:
  explicit ApiException(ApiError error) : std::runtime_error(error.message), error_(std::move(error)) {}
  const ApiError& error() const { return error_; }

 private:
  ApiError error_;
};

// HTTP status for a fathom error code (kInvalidArgument 400, kNotFound 404, kOverloaded 429, ...).
int http_status(ErrorCode code);
// "invalid_request_error" for 4xx, "rate_limit_error" for 429, "server_error" for 5xx.
std::string error_type(int status);
// An ApiError from a fathom Error; `code` defaults to the error code's name ("invalid_argument", ...).
ApiError to_api_error(const Error& error);
// A 4xx/5xx ApiError with the type derived from the status.
ApiError api_error(int status, std::string message, std::string param = {}, std::string code = {});
[[noreturn]] inline void fail(int status, std::string message, std::string param = {}, std::string code = {}) {
  throw ApiException(api_error(status, std::move(message), std::move(param), std::move(code)));
}
[[noreturn]] inline void fail(const Error& error) { throw ApiException(to_api_error(error)); }

nlohmann::json error_json(const ApiError& error);
// Sets status, JSON body and content type.
void send_error(httplib::Response& res, const ApiError& error);

}  // namespace fathom::server
