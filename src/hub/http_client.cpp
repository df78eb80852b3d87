#include "hub/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace fathom::hub {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

struct Transfer {
  CURL* curl = nullptr;
  HttpResponse response;
  BodySink* sink = nullptr;
  bool begun = false;
  bool sink_ok = true;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response.headers.clear();  // a new response (after a redirect or 100 Continue)
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    t->response.headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (!t->sink || status < 200 || status >= 300) {
    if (t->response.body.size() < (1u << 24)) t->response.body.append(data, n);
    return n;
  }
  if (!t->begun) {
    t->begun = true;
    t->response.status = status;
    if (!t->sink->begin(status, t->response)) {
      t->sink_ok = false;
      return 0;
    }
  }
  if (!t->sink->write(data, n)) {
    t->sink_ok = false;
    return 0;
  }
  return n;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) { global_init(); }

std::string HttpClient::origin(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto end = url.find('/', scheme + 3);
  return url.substr(0, end);
}

std::string HttpClient::escape(const std::string& text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Result<HttpResponse> HttpClient::get(const std::string& url, const std::vector<std::string>& headers) const {
  return perform(Method::kGet, url, headers, true, nullptr);
}

Result<HttpResponse> HttpClient::stream(const std::string& url, const std::vector<std::string>& headers,
                                        BodySink& sink) const {
  return perform(Method::kGet, url, headers, true, &sink);
}

Result<HttpResponse> HttpClient::head(const std::string& url) const {
  std::string current = url;
  for (int hop = 0; hop < 5; ++hop) {
    FATHOM_ASSIGN_OR_RETURN(HttpResponse r, perform(Method::kHead, current, {}, false, nullptr));
    const std::string location = r.header("location");
    if (r.status < 300 || r.status >= 400 || location.empty() || location[0] != '/') return r;
    current = origin(current) + location;  // a relative redirect: still the hub
  }
  return make_error(ErrorCode::kUnavailable, "too many redirects from " + url);
}

Result<HttpResponse> HttpClient::perform(Method method, const std::string& url, const std::vector<std::string>& headers,
                                         bool follow, BodySink* sink) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return make_error(ErrorCode::kInternal, "curl_easy_init failed");
  Transfer t;
  t.curl = curl.get();
  t.sink = sink;
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  if (!options_.token.empty()) list = curl_slist_append(list, ("Authorization: Bearer " + options_.token).c_str());
  list = curl_slist_append(list, "Accept-Encoding: identity");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list_guard(list, curl_slist_free_all);
  char error_buffer[CURL_ERROR_SIZE] = {0};

  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "fathom/" FATHOM_VERSION);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (method == Method::kHead) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);

  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.response.status);
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  t.response.url = effective ? effective : url;
  if (rc == CURLE_WRITE_ERROR && !t.sink_ok) {
    return make_error(ErrorCode::kInternal, "download from " + url + " stopped: could not store the data");
  }
  if (rc != CURLE_OK) {
    std::string why = error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
    return make_error(ErrorCode::kUnavailable, "network error talking to " + origin(t.response.url) + ": " + why);
  }
  return t.response;
}

}  // namespace fathom::hub
