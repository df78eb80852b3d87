#include "server/http_errors.h"

#include <httplib.h>

namespace fathom::server {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kUnsupported: return 400;
    case ErrorCode::kTooLarge: return 400;
    case ErrorCode::kLoadFailed: return 500;
    case ErrorCode::kOutOfMemory: return 503;
    case ErrorCode::kOverloaded: return 429;
    case ErrorCode::kTimeout: return 504;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

std::string error_type(int status) {
  if (status == 429) return "rate_limit_error";
  if (status >= 400 && status < 500) return "invalid_request_error";
  return "server_error";
}

ApiError api_error(int status, std::string message, std::string param, std::string code) {
  return ApiError{status, std::move(message), error_type(status), std::move(param), std::move(code)};
}

ApiError to_api_error(const Error& error) {
  int status = http_status(error.code);
  return api_error(status, error.message, error.param, error_code_name(error.code));
}

nlohmann::json error_json(const ApiError& error) {
  nlohmann::json e;
  e["message"] = error.message;
  e["type"] = error.type;
  e["param"] = error.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.param);
  e["code"] = error.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(error.code);
  return nlohmann::json{{"error", e}};
}

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  // Overload is temporary: tell clients when to come back (OpenAI's clients honour Retry-After).
  if (error.status == 429 && !res.has_header("Retry-After")) res.set_header("Retry-After", "1");
  res.set_content(error_json(error).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

}  // namespace fathom::server
