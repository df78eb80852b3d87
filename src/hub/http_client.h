#pragma once
// A small blocking HTTP client over libcurl for the hub downloader.
//
// Every request carries `Authorization: Bearer <token>` when a token is set (libcurl does not forward it to
// another host on a redirect) and a fathom User-Agent. A transport failure (DNS, refused connection, reset,
// stall, a body cut short) is an Error of code kUnavailable whose message names the URL's scheme://host:port;
// an HTTP status is never an error here: callers read HttpResponse::status.
// Thread-safety: one HttpClient per thread (each request uses its own curl handle; libcurl's global init
// runs once).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::hub {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // of the final response; names lower-case
  std::string body;                            // in memory for get(); for stream() only an error status's body
  std::string url;                             // the URL that answered (after redirects)
  std::string header(const std::string& lower_name) const;  // "" when absent
};

struct HttpOptions {
  std::string token;            // bearer token; empty: none
  long connect_timeout_s = 10;  // to open a connection
  long stall_timeout_s = 60;    // a transfer slower than 1 byte/s for this long is aborted
};

// Receives a streamed body. begin() is called once with the final status before the first byte (return
// false to abort); write() with each chunk (return false to abort).
struct BodySink {
  virtual ~BodySink() = default;
  virtual bool begin(long status, const HttpResponse& headers) = 0;
  virtual bool write(const char* data, std::size_t size) = 0;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);

  // GET with the body in memory; redirects followed.
  Result<HttpResponse> get(const std::string& url, const std::vector<std::string>& headers = {}) const;
  // HEAD; relative redirects (Location "/...", as for a renamed repository) are followed, absolute ones (to a
  // CDN) are not, so the hub's own headers (X-Linked-Etag, X-Repo-Commit) are the ones returned.
  Result<HttpResponse> head(const std::string& url) const;
  // GET streaming a 2xx body into `sink`; redirects followed. A body other than 2xx lands in response.body.
  Result<HttpResponse> stream(const std::string& url, const std::vector<std::string>& headers, BodySink& sink) const;

  // "scheme://host[:port]" of `url` (for error messages).
  static std::string origin(const std::string& url);
  // Percent-encodes everything but [A-Za-z0-9._~-], and '/' too when keep_slash.
  static std::string escape(const std::string& text, bool keep_slash);

 private:
  enum class Method { kGet, kHead };
  Result<HttpResponse> perform(Method method, const std::string& url, const std::vector<std::string>& headers,
                               bool follow, BodySink* sink) const;
  HttpOptions options_;
};

}  // namespace fathom::hub
