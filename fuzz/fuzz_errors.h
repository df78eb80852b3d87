#pragma once
// What the HTTP handler wrapper does with a failure, for the fuzz targets that reach it: serialise the
// OpenAI error body. It must not throw (e.g. on bytes of invalid UTF-8 quoted from a request body by a JSON
// parse error) and must produce the error's status and a body; anything else aborts (a finding).
#include <cstdlib>

#include <httplib.h>

#include "server/http_errors.h"

namespace fathom::fuzz {

inline void serialise_error(const server::ApiError& e) {
  httplib::Response res;
  server::send_error(res, e);
  if (res.status != e.status || res.body.empty()) std::abort();
}

}  // namespace fathom::fuzz
