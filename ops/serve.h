// `g60ledger serve`: a read-only HTTP server (cpp-httplib) over the compliance queries,
// the proofs, and the auditor's web page (web/). Every request reads the ledger in its
// own LMDB read transaction, so the server runs beside a live ingest (another process)
// and each answer reflects every batch committed before the request began.
//
// The API is described by docs/openapi.json, served at /openapi.json; errors are JSON
// {"error": "...", "status": N} with 400 for bad parameters and 404 for what is not there.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ledger/note.h"
#include "ledger/store.h"

namespace httplib {
class Server;
}

namespace g60 {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8060;                 // 0: any free port (tests)
  std::string web_dir;             // the page's files; empty: API only
  std::string openapi_path;        // docs/openapi.json
  // The key checkpoints are checked with (the auditor's copy); when absent, the key the
  // ledger names, which the status says.
  std::optional<note::Verifier> ledger_key;
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Start(const Ledger& ledger, const ServeOptions& o);
  ~ApiServer();
  int port() const { return port_; }
  void Stop();
  // The route patterns served under /api (for the OpenAPI test).
  const std::vector<std::string>& routes() const { return routes_; }

 private:
  ApiServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<std::string> routes_;
};

// Splits "HOST:PORT" (the port may be 0).
Result<std::pair<std::string, int>> ParseListen(std::string_view listen);

}  // namespace g60
