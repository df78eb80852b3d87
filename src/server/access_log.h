#pragma once
// One structured access-log line per request, written at info level through base/log:
//   access {"method":"POST","path":"/v1/embeddings","status":200,"latency_ms":3.41,"model":"bge","bytes_in":57,"bytes_out":812}
// The start time is taken when routing begins and the line is written once the response is sent. Each
// connection is served by one thread from start to end, so the per-request fields live in thread-locals.
#include <string>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace fathom::server {

// Marks the start of a request on this thread.
void access_begin();
// Records which model the current request addressed (shown in the access line).
void access_note_model(const std::string& model);
// The model noted for the current request ("" when none) and the seconds since access_begin().
const std::string& access_model();
double access_elapsed_s();
// Writes the line for the request just answered on this thread and resets the per-request fields.
void access_end(const httplib::Request& req, const httplib::Response& res);

}  // namespace fathom::server
