// The S3 gateway going away in the middle of archive-push: the push must fail
// (exit 10, io; no false success, no metadata stored) and the next push after the
// gateway is back must succeed. The "gateway" is a TCP relay in front of the
// real S3 server that can cut every connection once the client has sent more
// than a given number of bytes (the segment upload), as a stopped gateway does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "integration/walvault_cli.h"
#include "s3/s3_test_env.h"
#include "support/segment_builder.h"

namespace walvault::testing {
namespace {

class CuttingRelay {
 public:
  CuttingRelay(int target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~CuttingRelay() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    for (auto& t : pumps_) t.join();
  }
  int port() const { return port_; }
  // Cut every connection once the clients have sent more than `bytes` in
  // total from now on; 0 turns cutting off (the gateway is back).
  void cut_after(std::uint64_t bytes) {
    sent_ = 0;
    limit_ = bytes;
  }
  int cuts() const { return cuts_; }

 private:
  void accept_loop() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(target_port_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      pumps_.emplace_back([this, client, server] { pump(client, server); });
    }
  }
  void pump(int client, int server) {
    std::vector<char> buf(64 << 10);
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    while (!stop_) {
      if (::poll(fds, 2, 200) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
        if (n <= 0) {
          done = true;
          break;
        }
        if (i == 0) {
          sent_ += static_cast<std::uint64_t>(n);
          if (limit_ != 0 && sent_ > limit_) {
            ++cuts_;
            done = true;
            break;
          }
        }
        if (::write(fds[1 - i].fd, buf.data(), static_cast<std::size_t>(n)) != n) done = true;
      }
      if (done) break;
    }
    ::shutdown(client, SHUT_RDWR);
    ::close(client);
    ::close(server);
  }

  int target_port_;
  int listener_ = -1, port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0}, limit_{0};
  std::atomic<int> cuts_{0};
};

// A valid 16 MiB segment full of incompressible records, so its upload is
// about 16 MiB on the wire.
std::string write_random_segment(const std::string& dir) {
  pg::testing::SegmentBuilder::Options o;
  o.segment_size = 16u << 20;
  o.segno = 1;
  pg::testing::SegmentBuilder b(o);
  std::mt19937_64 rng(42);
  Bytes body(7000);
  while (b.position() + 8192 < o.segment_size) {
    for (auto& c : body) c = static_cast<std::uint8_t>(rng());
    b.add_record(0 /* XLOG */, 0x20 /* NOOP-like: not decoded */, 0, body);
  }
  const std::string path = dir + "/" + b.file_name();
  write_text(path, std::string(as_chars(b.bytes())));
  give_to_test_user(path);
  return path;
}

TEST(S3GatewayFault, GatewayStoppedMidPushFailsAndTheRetrySucceeds) {
  const auto server = store::testing::s3_test_server();
  if (!server) GTEST_SKIP() << "no S3 test server configured (WALVAULT_TEST_S3_*)";
  const auto colon = server->endpoint.rfind(':');
  ASSERT_NE(colon, std::string::npos) << server->endpoint;
  const int s3_port = std::stoi(server->endpoint.substr(colon + 1));
  const std::string bucket = store::testing::make_s3_test_bucket(*server);
  CuttingRelay relay(s3_port);
  const std::string repo = "s3://" + bucket + "/fault";
  std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", server->access_key},
      {"AWS_SECRET_ACCESS_KEY", server->secret_key},
      {"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(relay.port())}};
  ASSERT_EQ(walvault({"--repo", repo, "repo", "init"}, env).status, 0);
  TempDir work("wv-s3-fault");
  const std::string segment = write_random_segment(work.path());
  const std::string name = segment.substr(segment.rfind('/') + 1);

  // The gateway dies once 1 MiB of the upload has gone through, every time.
  relay.cut_after(1 << 20);
  auto failed = walvault({"--repo", repo, "archive-push", "--parallel", "1", segment}, env);
  EXPECT_EQ(failed.status, 10) << failed.out << failed.err;  // io: the store failed
  EXPECT_GT(relay.cuts(), 0);
  EXPECT_EQ(line_count(failed.err), 1) << failed.err;
  EXPECT_NE(failed.err.find(name), std::string::npos) << failed.err;

  // The gateway is back: nothing was reported archived (no metadata: a
  // restore_command miss), and PostgreSQL's retry of the push succeeds.
  relay.cut_after(0);
  auto miss = walvault(
      {"--repo", repo, "archive-get", "--prefetch", "0", name, work.sub("got-before")}, env);
  EXPECT_EQ(miss.status, 1) << miss.err;
  auto pushed = walvault({"--repo", repo, "archive-push", "--parallel", "1", segment}, env);
  ASSERT_EQ(pushed.status, 0) << pushed.err;
  auto got =
      walvault({"--repo", repo, "archive-get", "--prefetch", "0", name, work.sub("got")}, env);
  ASSERT_EQ(got.status, 0) << got.err;
  EXPECT_TRUE(read_text(work.sub("got")) == read_text(segment));
}

}  // namespace
}  // namespace walvault::testing
