// Tutorial step 5: a sharded HTTP service. It serves on every shard, asks
// itself for a page (over 127.0.0.1), and stops. Run it with --serve to keep
// it serving until SIGINT/SIGTERM.
#include <absl/flags/flag.h>

#include <cstdio>
#include <string>

#include "core/coroutine.h"
#include "http/server.h"
#include "net/stack.h"
#include "smp/app_template.h"
#include "smp/sharded.h"
#include "smp/smp.h"

ABSL_FLAG(bool, serve, false, "keep serving until SIGINT or SIGTERM");

// [snippet http_routes]
void add_routes(reef::http::routes& r) {
  r.add("GET", "/hello/{name}", [](reef::http::request& req) {
    return reef::http::reply().write_body("text/plain", "Hello, " + std::string(req.param("name")) + "!\n");
  });
  // Or fill in the reply the server passes (it reuses one per connection).
  r.add("GET", "/shard", [](reef::http::request&, reef::http::reply& rep) {
    rep.write_body("text/plain", std::to_string(reef::this_shard_id()) + "\n");
  });
}
// [end]

// Asks `address` for `path` with a plain HTTP/1.1 request; the reply's body.
reef::future<std::string> get(reef::socket_address address, std::string path) {
  auto s = co_await reef::connect(address);
  auto out = s.output();
  co_await out.write("GET " + path + " HTTP/1.1\r\nHost: tutorial\r\nConnection: close\r\n\r\n");
  co_await out.flush();
  auto in = s.input();
  std::string reply;
  for (auto b = co_await in.read(); !b.empty(); b = co_await in.read()) reply.append(b.view());
  co_await out.close();
  co_return reply.substr(reply.find("\r\n\r\n") + 4);
}

int main(int argc, char** argv) {
  reef::app_template app({.name = "step5", .description = "A sharded HTTP service."});
  return app.run(argc, argv, []() -> reef::future<int> {
    // [snippet sharded_http]
    reef::sharded<reef::http::http_server> servers;
    co_await servers.start(reef::http::server_options{});
    co_await servers.invoke_on_all([](reef::http::http_server& s) { add_routes(s.get_routes()); });
    // Shard 0 listens first (port 0: the kernel picks), then every other
    // shard on the same port; the kernel spreads connections (SO_REUSEPORT).
    co_await servers.local().listen(reef::socket_address::parse("127.0.0.1:0"));
    auto address = servers.local().listening_addresses().front();
    co_await servers.invoke_on_others([address](reef::http::http_server& s) { return s.listen(address); });
    // [end]
    std::string hello = co_await get(address, "/hello/reef");
    std::printf("%s on %s", hello.c_str(), address.to_string().c_str());
    std::printf("\n");
    if (absl::GetFlag(FLAGS_serve)) co_await reef::app_template::stop_signal();
    co_await servers.stop();
    co_return hello == "Hello, reef!\n" ? 0 : 1;
  });
}
