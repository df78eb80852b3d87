// Regression tests for request bodies the fuzzers (fuzz/embeddings_request) found mishandled.
// See docs/reliability.md.
#include <string>

#include <gtest/gtest.h>
#include <httplib.h>

#include "server/http_errors.h"
#include "server/router.h"

namespace fathom::server {
namespace {

ApiError body_error(const std::string& body) {
  httplib::Request req;
  req.set_header("Content-Type", "application/json");
  req.body = body;
  try {
    (void)parse_json_body(req, 2u << 20);
  } catch (const ApiException& e) {
    return e.error();
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

// A number beyond double's range makes nlohmann::json throw out_of_range (not parse_error); it escaped
// parse_json_body and the client got a 500 instead of a 400 "invalid_json".
TEST(RobustnessServer, NumberOverflowInTheBodyIsA400) {
  for (const std::string body : {R"({"model": "m", "input": [[0, 1], [3, 1e400]]})", R"({"dimensions": -1e999})"}) {
    ApiError e = body_error(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.code, "invalid_json") << body;
    EXPECT_NE(e.message.find("1e"), std::string::npos) << e.message;
  }
}

// Bytes of invalid UTF-8 outside strings are quoted by the parser's message; the error body must still
// serialise (send_error replaces them).
TEST(RobustnessServer, InvalidUtf8InAMalformedBodyStillGivesAJsonError) {
  ApiError e = body_error("{\"model\": \"\", \xc0\"input\": []}");
  EXPECT_EQ(e.status, 400);
  httplib::Response res;
  send_error(res, e);
  EXPECT_EQ(res.status, 400);
  EXPECT_NO_THROW((void)nlohmann::json::parse(res.body));
}

}  // namespace
}  // namespace fathom::server
