// `g60ledger serve`: a read-only HTTP server (cpp-httplib) over the compliance queries,
// the proofs, the checkpoints, and the auditor's web page (web/). Every request reads the
// ledger in its own LMDB read transaction, so the server runs beside a live ingest
// (another process) and each answer reflects every batch committed before it began.
//
// The API is described by docs/openapi.json, served at /openapi.json; docs/queries.md
// describes every answer and, under "Securing a deployment", TLS, tokens and roles.
//
// Every request passes one front door before anything answers it:
//   - methods other than GET and HEAD get 405 with "Allow: GET, HEAD" (RFC 9110 §15.5.6);
//     a method HTTP does not define gets 501 (§15.6.2);
//   - a request with content (a body) gets 413: this server reads none;
//   - the request target is read by ParseRequestTarget (ops/http_target.h): bad
//     percent-encoding, control characters, bytes that are not UTF-8, or a parameter
//     given twice get 400; ids are routed as percent-encoded path segments ("a%2Fb" is
//     the id "a/b");
//   - /api/* needs a role (ops/serve_access.h): 401 with WWW-Authenticate: Bearer
//     (RFC 6750 §3) without acceptable credentials, 403 for a role that may not read it;
//   - the page's files are an allow-list read from the web directory when the server
//     starts; no path is ever mapped to a file name.
// Every error, the ones cpp-httplib raises itself (400 for a malformed request, 414 for
// a request line over 8192 bytes) included, is JSON {"error": "...", "status": N}. After
// an error on a request whose bytes the server did not read to the end (a body, a
// malformed request) the connection is closed, so nothing left of it is read as a
// request of its own.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ledger/note.h"
#include "ledger/store.h"
#include "ops/serve_access.h"

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

  // HTTPS: the server's certificate chain (leaf first) and its private key, PEM files.
  // Both or neither. TLS 1.2 or later.
  std::string tls_cert_file, tls_key_file;
  // Mutual TLS: every client must present a certificate this CA (PEM) signed, or the
  // handshake fails. Such a client reads as `client_cert_role` unless it also presents
  // a bearer token, whose role then counts.
  std::string tls_client_ca_file;
  ReadRole client_cert_role = ReadRole::kAuditor;
  // Bearer tokens (ops/serve_access.h gives the file's format); empty: none.
  std::string tokens_file;
  // The role of a request that presents no credentials. Unset: refused (401) when tokens
  // or client certificates are configured; when neither is, everything is open on a
  // loopback address (the development default) and Start refuses any other address.
  std::optional<ReadRole> anonymous_role;
};

// The role a request without credentials gets (nullopt: 401), or InvalidArgument when
// the options would open every applicant's record to a network without anyone choosing
// to: no tokens, no client certificates, no anonymous role, and a non-loopback address.
Result<std::optional<ReadRole>> AnonymousRole(const ServeOptions& o);

// Whether `host` is a loopback address: "localhost", 127.0.0.0/8 or ::1.
bool IsLoopbackHost(std::string_view host);

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Start(const Ledger& ledger, const ServeOptions& o);
  ~ApiServer();
  int port() const { return port_; }
  bool tls() const { return tls_; }
  void Stop();
  // The JSON endpoints served: path template (e.g. "/api/proofs/{event_id}") and the
  // least role that reads it ("" when none is needed), for the OpenAPI test.
  struct RouteInfo {
    std::string path;
    std::string role;
  };
  const std::vector<RouteInfo>& routes() const { return routes_; }

 private:
  ApiServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  bool tls_ = false;
  std::vector<RouteInfo> routes_;
};

// Splits "HOST:PORT" (the port may be 0).
Result<std::pair<std::string, int>> ParseListen(std::string_view listen);

}  // namespace g60
