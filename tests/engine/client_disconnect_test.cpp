// A client that closes its connection while its request waits in a model's queue: the server notices
// (server/client_liveness.h) and drops the queued inputs long before the request deadline; other clients
// are unaffected.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include <httplib.h>

#include "engine/model_manager.h"
#include "fake_model.h"
#include "formats/tokenizer/tokenizer.h"
#include "server/client_liveness.h"
#include "server/server.h"
#include "support/http_test_server.h"
#include "support/paths.h"

namespace fathom::server {
namespace {

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(ClientDisconnect, AQueuedRequestOfAClosedConnectionIsDroppedBeforeItsDeadline) {
  auto gate = std::make_shared<fathom::testing::Gate>();
  auto tokenizer = formats::Tokenizer::load(fathom::testing::fixture("models/bert-mean-norm/tokenizer.json"));
  ASSERT_TRUE(tokenizer.ok());
  engine::ModelManager manager;
  ASSERT_TRUE(manager
                  .add("m", std::make_unique<fathom::testing::FakeModel>("m", 4, nullptr, gate,
                                                                         std::move(tokenizer).value()),
                       1024)
                  .ok());
  fathom::testing::HttpTestServer server;
  ServerOptions options;
  options.request_timeout_s = 120;  // far beyond the test: only the disconnect can end the request early
  ASSERT_NO_FATAL_FAILURE(server.start(options, manager));
  auto scheduler = manager.find("m")->embed_scheduler;

  // Request 1 occupies the device worker inside the model (the gate is closed).
  auto first = std::async(std::launch::async, [&] {
    return server.client(60).Post("/v1/embeddings", R"({"model":"m","input":[[101,5,102]]})", "application/json");
  });
  gate->await_waiters(1);

  // Request 2 waits in the queue behind it; then its client goes away.
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  const std::string body = R"({"model":"m","input":[[101,6,102],[101,7,102]]})";
  const std::string request = "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  for (int i = 0; i < 500 && scheduler->stats().queued < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(scheduler->stats().queued, 2u);
  const auto closed_at = std::chrono::steady_clock::now();
  ::close(fd);

  for (int i = 0; i < 500 && scheduler->stats().cancelled < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(scheduler->stats().cancelled, 2u) << "the closed connection's queued inputs were not dropped";
  EXPECT_EQ(scheduler->stats().queued, 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, std::chrono::seconds(3));

  gate->open();
  auto r = first.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // The server keeps serving.
  auto again = server.client(60).Post("/v1/embeddings", R"({"model":"m","input":[[101,8,102]]})", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  server.stop();
  manager.shutdown();
}

TEST(ClientDisconnect, LivenessFindsTheRequestsSocketAndSeesItClose) {
  // A handler that reports what ClientLiveness sees while its client is connected.
  httplib::Server http;
  std::promise<std::pair<bool, int>> seen;
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<bool> gone_after_close;
  http.Get("/probe", [&](const httplib::Request& req, httplib::Response& res) {
    ClientLiveness client(req);
    const bool gone_now = client.gone();
    seen.set_value({gone_now, client.fd()});
    released.wait();
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
      gone = client.gone();
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    gone_after_close.set_value(gone);
    res.set_content("x", "text/plain");
  });
  const int port = http.bind_to_any_port("127.0.0.1");
  std::thread t([&] { http.listen_after_bind(); });
  const int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  const std::string request = "GET /probe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  auto [gone_now, sock] = seen.get_future().get();
  EXPECT_FALSE(gone_now);
  EXPECT_GE(sock, 0) << "the request's socket was not found";
  ::close(fd);
  release.set_value();
  EXPECT_TRUE(gone_after_close.get_future().get());
  http.stop();
  t.join();
}

}  // namespace
}  // namespace fathom::server
