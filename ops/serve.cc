#include "ops/serve.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "ledger/bundle.h"
#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/entry.h"
#include "ledger/merkle.h"
#include "ledger/query.h"
#include "ops/http_target.h"

namespace g60 {

using nlohmann::json;

Result<std::pair<std::string, int>> ParseListen(std::string_view listen) {
  size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string_view::npos && colon > 0) {
    auto digits = listen.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size()) port = -1;
  }
  if (port < 0 || port > 65535) {
    return Fail(Error::InvalidArgument(
        fmt::format("--listen '{}' is not HOST:PORT (e.g. 127.0.0.1:8060)", listen)));
  }
  return std::make_pair(std::string(listen.substr(0, colon)), port);
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Result<std::optional<ReadRole>> AnonymousRole(const ServeOptions& o) {
  if (o.anonymous_role) return o.anonymous_role;
  if (!o.tokens_file.empty() || !o.tls_client_ca_file.empty()) {
    return std::optional<ReadRole>{};
  }
  if (IsLoopbackHost(o.host)) return std::optional<ReadRole>(ReadRole::kAuditor);
  return Fail(Error::InvalidArgument(fmt::format(
      "serve would show every applicant's record to anyone who can reach {}: give --tokens "
      "FILE (bearer tokens) or --tls-client-ca FILE (client certificates), or choose "
      "--allow-anonymous public (totals and checkpoints only) or --allow-anonymous auditor "
      "(everything)",
      o.host)));
}

namespace {

constexpr std::string_view kAllow = "GET, HEAD";
// The response headers every answer carries: no content sniffing, no framing, no
// referrer, and for the page only this server's own scripts and styles.
const httplib::Headers kDefaultHeaders = {
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Content-Security-Policy",
     "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}};

using Headers = std::vector<std::pair<std::string, std::string>>;

// A request that cannot be answered: its HTTP status, why, and what else the client
// needs (an Allow or WWW-Authenticate header, fields beside the message).
struct HttpError {
  int status;
  std::string message;
  Headers headers = {};
  json extra = json::object();
};

// The WWW-Authenticate header of RFC 6750 §3, with its error code when there is one
// (invalid_request, invalid_token, insufficient_scope).
Headers BearerChallenge(std::string_view error) {
  std::string v = "Bearer realm=\"g60ledger\"";
  if (!error.empty()) v += fmt::format(", error=\"{}\"", error);
  return {{"WWW-Authenticate", v}};
}

HttpError FromError(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
      return {400, e.message()};
    case ErrorCode::kNotFound:
      return {404, e.message()};
    case ErrorCode::kFailedPrecondition:
      return {409, e.message()};
    default:
      return {500, e.ToString()};
  }
}

std::string Dump(const json& j) {
  // Messages quote what clients sent; replace, never throw, on bytes that are not UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void SendJson(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(Dump(j), "application/json");
}

void SendError(httplib::Response& res, const HttpError& e) {
  json body = e.extra;
  body["error"] = e.message;
  body["status"] = e.status;
  for (const auto& [k, v] : e.headers)
    res.set_header(k, v);
  SendJson(res, body, e.status);
}

// Whether the request carries content (RFC 9112 §6.3): this server reads none, so its
// bytes are still on the connection.
bool HasContent(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  return req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0";
}

// Makes the response the last on its connection. cpp-httplib 0.11 has no call for it; a
// response whose content provider reports failure after writing the whole body ends the
// connection (Server::process_request returns false), so that is how it is done. (A HEAD
// response has no body, so a HEAD request with content keeps its connection.)
void CloseAfter(httplib::Response& res) {
  std::string body = std::move(res.body);
  std::string type = res.get_header_value("Content-Type");
  res.body.clear();
  res.headers.erase("Content-Type");  // set_content_provider sets it again
  res.set_header("Connection", "close");
  res.set_content_provider(
      body.size(), type, [body](size_t offset, size_t length, httplib::DataSink& sink) {
        if (offset < body.size())
          sink.write(body.data() + offset, std::min(length, body.size() - offset));
        return false;
      });
}

// Text from a request for a log line: bytes outside printable ASCII escaped.
std::string ForLog(std::string_view s) {
  return PrintableBytes(s, 512);
}

// A request target for a log line: the path, and of the query only the parameter names,
// so that a credential a client put in the URL by mistake (RFC 6750 §2.3) is not logged.
std::string TargetForLog(std::string_view target) {
  size_t q = target.find('?');
  std::string out = ForLog(target.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  char sep = '?';
  for (size_t start = 0; start < query.size();) {
    size_t amp = query.find('&', start);
    std::string_view pair = query.substr(start, amp == query.npos ? query.npos : amp - start);
    start = amp == query.npos ? query.size() : amp + 1;
    if (pair.empty()) continue;
    out += sep + ForLog(pair.substr(0, pair.find('=')));
    sep = '&';
  }
  return out;
}

// Query parameters, checked against what the endpoint accepts.
class Params {
 public:
  Params(const std::vector<std::pair<std::string, std::string>>& query,
         const std::set<std::string>& allowed) {
    for (const auto& [k, v] : query) {
      if (!allowed.count(k) && !bad_) {
        bad_ = HttpError{400, fmt::format("unknown parameter '{}'{}", k,
                                          allowed.empty() ? ": this endpoint takes none" : "")};
      }
      values_[k] = v;
    }
  }
  const std::optional<HttpError>& bad() const { return bad_; }
  // The value of a parameter that was given (possibly empty), or nullopt.
  std::optional<std::string> Find(const std::string& k) const {
    auto it = values_.find(k);
    return it == values_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::string Get(const std::string& k) const {
    auto it = values_.find(k);
    return it == values_.end() ? std::string() : it->second;
  }
  Result<Page> GetPage() const {
    Page p;
    if (std::string l = Get("limit"); !l.empty()) {
      size_t n = 0;
      auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), n);
      if (ec != std::errc() || end != l.data() + l.size() || n < 1 || n > 10000) {
        return Fail(Error::InvalidArgument("limit must be an integer from 1 to 10000"));
      }
      p.limit = n;
    }
    p.after = Get("after");
    return p;
  }
  Result<Period> GetPeriod() const {
    Period p;
    if (std::string f = Get("from"); !f.empty()) {
      auto v = ParseCstTime(f, "from");
      if (!v) return Fail(v.error());
      p.from_ms = *v;
    }
    if (std::string t = Get("to"); !t.empty()) {
      auto v = ParseCstTime(t, "to");
      if (!v) return Fail(v.error());
      p.to_ms = *v;
    }
    return p;
  }
  // The filters of docs/queries.md: from, to, applicant, programme, level, source,
  // min_fen, max_fen.
  Result<Filter> GetFilter() const {
    Filter f;
    auto period = GetPeriod();
    if (!period) return Fail(period.error());
    f.period = *period;
    f.applicant_id = Get("applicant");
    f.programme = Get("programme");
    f.level = Get("level");
    f.source = Get("source");
    for (auto [name, out] : {std::pair{"min_fen", &f.min_fen}, std::pair{"max_fen", &f.max_fen}}) {
      std::string v = Get(name);
      if (v.empty()) continue;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
      if (ec != std::errc() || end != v.data() + v.size()) {
        return Fail(Error::InvalidArgument(
            fmt::format("{} must be an integer amount in fen such as 100000", name)));
      }
    }
    return f;
  }
  Result<int> GetYear() const {
    std::string y = Get("year");
    if (y.empty()) return 0;
    int v = 0;
    auto [end, ec] = std::from_chars(y.data(), y.data() + y.size(), v);
    if (ec != std::errc() || end != y.data() + y.size() || v < 1970 || v > 9999) {
      return Fail(Error::InvalidArgument("year must be a calendar year such as 2026"));
    }
    return v;
  }

 private:
  std::map<std::string, std::string> values_;
  std::optional<HttpError> bad_;
};

template <typename T>
Result<T> ParseNumber(std::string_view text, std::string_view what, std::string_view example) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Fail(Error::InvalidArgument(
        fmt::format("{} must be a non-negative integer such as {}", what, example)));
  }
  return v;
}

class Api {
 public:
  Api(const Ledger& ledger, const ServeOptions& o) : ledger_(ledger), o_(o), queries_(ledger) {}

  // The key checkpoints are checked with, and whether it is the ledger's own claim.
  Result<std::pair<std::optional<note::Verifier>, bool>> Key(const lmdb::Txn& txn) const {
    if (o_.ledger_key) return std::make_pair(o_.ledger_key, false);
    auto stored = CheckpointVerifierKey(txn, ledger_.tables());
    if (!stored) return Fail(stored.error());
    if (!*stored) return std::make_pair(std::optional<note::Verifier>(), true);
    auto v = note::ParseVerifierKey(**stored);
    if (!v) return Fail(v.error());
    return std::make_pair(std::optional<note::Verifier>(*v), true);
  }

  // A stored checkpoint with the server's check of it, as JSON.
  Result<json> CheckpointJson(const lmdb::Txn& txn, const std::optional<note::Verifier>& key,
                              const StoredCheckpoint& c) const {
    if (!key) {
      CheckpointView v;
      v.stored = c;
      v.problem = "no key to check it with";
      return v.ToJson();
    }
    auto v = ViewCheckpoint(txn, ledger_.tables(), c, *key);
    if (!v) return Fail(v.error());
    return v->ToJson();
  }

  Result<json> Status() const {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    const Tables& t = ledger_.tables();
    auto key = Key(*txn);
    if (!key) return Fail(key.error());
    auto heads = ReadHeads(*txn, t);
    if (!heads) return Fail(heads.error());
    json out;
    out["ledger"] = key->first ? key->first->name : "";
    out["verifier_key"] = key->first ? note::VerifierKey(*key->first) : "";
    out["key_from_ledger"] = key->second;
    out["partitions"] = json::array();
    uint64_t entries = 0, covered = 0;
    bool all_ok = true;
    for (const auto& h : *heads) {
      auto root = merkle::Root(MerkleNodes(*txn, t, h.partition), h.size);
      if (!root) return Fail(root.error());
      json p{{"partition", h.partition},
             {"size", h.size},
             {"head_hash", HexEncode(AsBytes(h.head_hash))},
             {"merkle_root", Base64Encode(AsBytes(*root))},
             {"checkpoint", nullptr}};
      entries += h.size;
      auto latest = LatestCheckpoint(*txn, t, h.partition);
      if (!latest) return Fail(latest.error());
      if (*latest) {
        auto c = CheckpointJson(*txn, key->first, **latest);
        if (!c) return Fail(c.error());
        all_ok = all_ok && (*c)["verified"] == true;
        covered += (*latest)->size;
        p["checkpoint"] = std::move(*c);
      }
      out["partitions"].push_back(std::move(p));
    }
    out["entries"] = entries;
    out["entries_covered_by_checkpoints"] = covered;
    out["checkpoints_verified"] = all_ok;
    return out;
  }

  // Readiness: the ledger can be read, and how far checkpoints lag behind the entries.
  Result<json> Ready() const {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    const Tables& t = ledger_.tables();
    auto heads = ReadHeads(*txn, t);
    if (!heads) return Fail(heads.error());
    uint64_t entries = 0, uncovered = 0;
    std::optional<int64_t> oldest_ms;
    for (const auto& h : *heads) {
      auto latest = LatestCheckpoint(*txn, t, h.partition);
      if (!latest) return Fail(latest.error());
      uint64_t covered = *latest ? (*latest)->size : 0;
      entries += h.size;
      if (h.size <= covered) continue;
      uncovered += h.size - covered;
      auto bytes = txn->Get(t.entries, EntryKey(h.partition, covered));
      if (!bytes) return Fail(bytes.error());
      if (!*bytes) {
        return Fail(
            Error::DataLoss(fmt::format("partition {} has no entry {} though its head counts {}",
                                        h.partition, covered, h.size)));
      }
      auto e = DecodeEntry(**bytes);
      if (!e) return Fail(e.error());
      int64_t ts = e->body.source().timestamp_ms();
      oldest_ms = oldest_ms ? std::min(*oldest_ms, ts) : ts;
    }
    json out{{"status", "ready"},
             {"partitions", heads->size()},
             {"entries", entries},
             {"entries_not_covered_by_checkpoints", uncovered},
             {"oldest_uncovered_entry_age_seconds", nullptr}};
    if (oldest_ms) {
      int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      out["oldest_uncovered_entry_age_seconds"] = std::max<int64_t>(0, now_ms - *oldest_ms) / 1000;
    }
    return out;
  }

  // `applicant`: whose event `id` is, when several applicants used the id.
  Result<json> Proof(std::string_view id, std::string_view at,
                     std::optional<std::string_view> applicant) const {
    std::vector<EntryRef> refs;
    std::string subject(id);
    if (!at.empty()) {
      unsigned p = 0;
      unsigned long long s = 0;
      char tail = 0;
      if (std::sscanf(std::string(at).c_str(), "%u:%llu%c", &p, &s, &tail) != 2) {
        return Fail(Error::InvalidArgument("at must be PARTITION:SEQUENCE, e.g. 3:120"));
      }
      refs.push_back(EntryRef{p, s});
      subject = std::string(at);
    } else {
      auto txn = lmdb::Txn::Begin(ledger_.env(), true);
      if (!txn) return Fail(txn.error());
      auto found = ResolveEvent(*txn, ledger_.tables(), id, applicant);
      if (!found) return Fail(found.error());
      refs = *found;
    }
    return BuildBundle(ledger_, refs, "event", subject);
  }

  // A trace with each link's check, as verify-proof would give it.
  Result<json> Trace(std::string_view id, std::optional<std::string_view> applicant) const {
    std::vector<EntryRef> refs;
    std::optional<note::Verifier> key;
    std::vector<std::string> anchors;
    {
      auto txn = lmdb::Txn::Begin(ledger_.env(), true);
      if (!txn) return Fail(txn.error());
      auto traced = TraceEntries(*txn, ledger_.tables(), id, applicant);
      if (!traced) return Fail(traced.error());
      refs = *traced;
      auto k = Key(*txn);
      if (!k) return Fail(k.error());
      key = k->first;
      auto blob = txn->Get(ledger_.tables().meta, "anchors");
      if (!blob) return Fail(blob.error());
      for (size_t i = 0; *blob && i + kPublicKeySize <= (*blob)->size(); i += kPublicKeySize)
        anchors.emplace_back((*blob)->substr(i, kPublicKeySize));
    }
    auto bundle = BuildBundle(ledger_, refs, "trace", id);
    if (!bundle) return Fail(bundle.error());
    json verification;
    if (!key) {
      verification = {{"ok", false}, {"error", "the ledger has no checkpoint key"}};
    } else {
      auto v = VerifyBundle(*bundle, BundleTrust{*key, anchors});
      verification = {{"ok", v.has_value()}, {"error", v ? "" : v.error().message()}};
      if (v) {
        verification["links"] = json::array();
        for (const auto& l : *v) {
          verification["links"].push_back({{"partition", l.at.partition},
                                           {"sequence", l.at.sequence},
                                           {"signer", l.signer},
                                           {"origin", l.origin},
                                           {"tree_size", l.tree_size}});
        }
      }
    }
    // Beside the bundle (whose members docs/audit.md fixes): the catalogue each link was
    // decided under.
    auto catalogs = LinkCatalogues(ledger_, *bundle);
    if (!catalogs) return Fail(catalogs.error());
    return json{{"bundle", *bundle}, {"verification", verification}, {"catalogs", *catalogs}};
  }

  // The latest checkpoint of each partition.
  Result<json> Checkpoints() const {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto key = Key(*txn);
    if (!key) return Fail(key.error());
    auto heads = ReadHeads(*txn, ledger_.tables());
    if (!heads) return Fail(heads.error());
    json out = json::array();
    for (const auto& h : *heads) {
      auto latest = LatestCheckpoint(*txn, ledger_.tables(), h.partition);
      if (!latest) return Fail(latest.error());
      if (*latest) {
        auto c = CheckpointJson(*txn, key->first, **latest);
        if (!c) return Fail(c.error());
        out.push_back(std::move(*c));
      }
    }
    return out;
  }

  // The partition named by a path segment, which must be one the ledger has.
  Result<uint32_t> Partition(const lmdb::Txn& txn, std::string_view text) const {
    auto p = ParseNumber<uint32_t>(text, "the partition", "0");
    if (!p) return Fail(p.error());
    auto heads = ReadHeads(txn, ledger_.tables());
    if (!heads) return Fail(heads.error());
    for (const auto& h : *heads)
      if (h.partition == *p) return *p;
    return Fail(Error::NotFound(
        fmt::format("the ledger has no partition {} (it has {})", *p, heads->size())));
  }

  // One partition's checkpoints, smallest first, a page at a time.
  Result<json> CheckpointHistory(std::string_view partition, const Params& p) const {
    auto page = p.GetPage();
    if (!page) return Fail(page.error());
    uint64_t after = 0;
    if (!page->after.empty()) {
      auto a =
          ParseNumber<uint64_t>(page->after, "after (the last size of the page before)", "100");
      if (!a) return Fail(a.error());
      after = *a;
    }
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto part = Partition(*txn, partition);
    if (!part) return Fail(part.error());
    auto key = Key(*txn);
    if (!key) return Fail(key.error());
    // One more than the page, to know whether another follows.
    auto list = CheckpointsOf(*txn, ledger_.tables(), *part, after, page->limit + 1);
    if (!list) return Fail(list.error());
    json out{{"partition", *part}, {"checkpoints", json::array()}, {"next", nullptr}};
    for (size_t i = 0; i < list->size() && i < page->limit; ++i) {
      auto c = CheckpointJson(*txn, key->first, (*list)[i]);
      if (!c) return Fail(c.error());
      out["checkpoints"].push_back(std::move(*c));
    }
    if (list->size() > page->limit) out["next"] = std::to_string((*list)[page->limit - 1].size);
    return out;
  }

  Result<json> CheckpointOfSize(std::string_view partition, std::string_view size) const {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto part = Partition(*txn, partition);
    if (!part) return Fail(part.error());
    auto n = ParseNumber<uint64_t>(size, "the size", "100");
    if (!n) return Fail(n.error());
    auto c = CheckpointAt(*txn, ledger_.tables(), *part, *n);
    if (!c) return Fail(c.error());
    auto key = Key(*txn);
    if (!key) return Fail(key.error());
    return CheckpointJson(*txn, key->first, *c);
  }

  Result<json> Consistency(const Params& p) const {
    auto partition = ParseNumber<uint32_t>(p.Get("partition"), "partition", "0");
    if (!partition) return Fail(partition.error());
    auto old_size = ParseNumber<uint64_t>(p.Get("old"), "old", "100");
    if (!old_size) return Fail(old_size.error());
    auto new_size = ParseNumber<uint64_t>(p.Get("new"), "new", "200");
    if (!new_size) return Fail(new_size.error());
    if (*old_size > *new_size) return Fail(Error::InvalidArgument("old must not exceed new"));
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto head = ReadHeads(*txn, ledger_.tables());
    if (!head) return Fail(head.error());
    uint64_t size = 0;
    for (const auto& h : *head)
      if (h.partition == *partition) size = h.size;
    if (*new_size > size) {
      return Fail(Error::NotFound(
          fmt::format("partition {} has {} entries, fewer than {}", *partition, size, *new_size)));
    }
    auto proof = merkle::ConsistencyProof(MerkleNodes(*txn, ledger_.tables(), *partition),
                                          *old_size, *new_size);
    if (!proof) return Fail(proof.error());
    auto key = Key(*txn);
    if (!key) return Fail(key.error());
    json j{{"format", "g60ledger-consistency/v1"},
           {"origin", key->first ? CheckpointOrigin(key->first->name, *partition) : ""},
           {"old_size", *old_size},
           {"new_size", *new_size},
           {"hashes", json::array()}};
    for (const auto& h : *proof)
      j["hashes"].push_back(Base64Encode(AsBytes(h)));
    return j;
  }

  const Ledger& ledger_;
  const ServeOptions o_;
  Queries queries_;
};

// An endpoint under /api: its path template (segments; "{name}" matches any one
// segment, handed to `run` in order), the least role that may read it, and the query
// parameters it takes.
struct Route {
  std::string pattern;
  std::vector<std::string> segments;
  ReadRole role;
  std::set<std::string> params;
  std::function<Result<json>(const std::vector<std::string>& args, const Params& p)> run;

  // The path arguments when `path` matches, else nullopt.
  std::optional<std::vector<std::string>> Match(const std::vector<std::string>& path) const {
    if (path.size() != segments.size()) return std::nullopt;
    std::vector<std::string> args;
    for (size_t i = 0; i < path.size(); ++i) {
      if (segments[i].front() == '{') {
        if (path[i].empty()) return std::nullopt;
        args.push_back(path[i]);
      } else if (segments[i] != path[i]) {
        return std::nullopt;
      }
    }
    return args;
  }
};

// The page's files: the regular files directly in the web directory whose extension
// says what they are, read once when the server starts.
struct StaticFile {
  std::string content;
  std::string type;
};

Result<std::map<std::string, StaticFile>> LoadWebDir(const std::string& dir) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"}};
  constexpr uintmax_t kFileMaxBytes = uintmax_t{16} << 20;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Fail(Error::NotFound(fmt::format("the web page's directory {} does not exist", dir)));
  }
  std::map<std::string, StaticFile> files;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = f.path().filename().string();
    auto type = kTypes.find(f.path().extension().string());
    if (name.front() == '.' || type == kTypes.end() || !f.is_regular_file()) continue;
    if (f.file_size() > kFileMaxBytes) {
      return Fail(Error::InvalidArgument(fmt::format(
          "{} is larger than 16 MiB; the page's files are kept in memory", f.path().string())));
    }
    std::ifstream in(f.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    if (!in) return Fail(Error::NotFound(fmt::format("cannot read {}", f.path().string())));
    files[name] = StaticFile{s.str(), type->second};
  }
  if (ec) return Fail(Error::NotFound(fmt::format("cannot list {}: {}", dir, ec.message())));
  return files;
}

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += out.empty() ? "" : "; ";
    out += buf;
  }
  return out.empty() ? "no reason given" : out;
}

// Configures the TLS context: TLS 1.2 or later, no compression, no renegotiation, the
// certificate chain and key (which must match), and the client CA when mutual TLS is on.
bool SetupTls(SSL_CTX& ctx, const ServeOptions& o, std::string& error) {
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      &ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(&ctx, o.tls_cert_file.c_str()) != 1) {
    error = fmt::format(
        "cannot use {} as the server's certificate (a PEM certificate chain, "
        "the server's first): {}",
        o.tls_cert_file, OpenSslErrors());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, o.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      error = fmt::format("the private key in {} is not the key of the certificate in {}",
                          o.tls_key_file, o.tls_cert_file);
    } else {
      error = fmt::format("cannot use {} as the server's private key (an unencrypted PEM key): {}",
                          o.tls_key_file, OpenSslErrors());
    }
    return false;
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    error = fmt::format("the private key in {} is not the key of the certificate in {}",
                        o.tls_key_file, o.tls_cert_file);
    return false;
  }
  if (!o.tls_client_ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.tls_client_ca_file.c_str());
    if (!names || SSL_CTX_load_verify_locations(&ctx, o.tls_client_ca_file.c_str(), nullptr) != 1) {
      if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
      error = fmt::format("cannot read the client CA certificates (PEM) in {}: {}",
                          o.tls_client_ca_file, OpenSslErrors());
      return false;
    }
    SSL_CTX_set_client_CA_list(&ctx, names);  // takes the list
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return true;
}

// The subject common name of the client's verified certificate, for logs; empty when
// the connection has none.
std::string ClientCertificateName(const httplib::Request& req) {
  if (!req.ssl) return {};
  X509* cert = SSL_get0_peer_certificate(req.ssl);
  if (!cert || SSL_get_verify_result(req.ssl) != X509_V_OK) return {};
  X509_NAME* subject = X509_get_subject_name(cert);
  int i = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  std::string name = "certificate";
  if (i >= 0) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (n > 0)
      name = "certificate " + PrintableBytes(std::string_view(reinterpret_cast<char*>(utf8),
                                                              static_cast<size_t>(n)));
    OPENSSL_free(utf8);
  }
  return name;
}

// Who is asking, once the credentials are checked.
struct Caller {
  std::string name;  // for logs: the token's name, the certificate's, or "anonymous"
  ReadRole role = ReadRole::kPublic;
};

// The front door: every request, in the order the header comment of serve.h gives.
class FrontDoor {
 public:
  FrontDoor(std::shared_ptr<Api> api, std::vector<Route> routes,
            std::map<std::string, StaticFile> files, std::string openapi,
            std::optional<TokenTable> tokens, std::optional<ReadRole> anonymous,
            ReadRole client_cert_role)
      : api_(std::move(api)),
        routes_(std::move(routes)),
        files_(std::move(files)),
        openapi_(std::move(openapi)),
        tokens_(std::move(tokens)),
        anonymous_(anonymous),
        client_cert_role_(client_cert_role) {}

  void Handle(const httplib::Request& req, httplib::Response& res) const {
    std::string who = "-";
    auto fail = [&](const HttpError& e) {
      SendError(res, e);
      if (HasContent(req)) CloseAfter(res);
      Log(req, who, e.status);
    };
    if (req.method != "GET" && req.method != "HEAD") {
      return fail(
          {405,
           fmt::format("this server only reads: {} is not allowed; use GET (or HEAD)", req.method),
           {{"Allow", std::string(kAllow)}}});
    }
    if (HasContent(req)) {
      return fail({413,
                   "this read-only server takes no request content (a body); send the "
                   "request without one"});
    }
    auto target = ParseRequestTarget(req.target);
    if (!target) return fail({400, target.error().message()});
    const auto& seg = target->segments;
    if (seg.size() == 1 &&
        (seg[0] == "healthz" || seg[0] == "readyz" || seg[0] == "openapi.json")) {
      auto e = Unauthenticated(*target, res);
      if (e) return fail(*e);
      Log(req, who, res.status);
      return;
    }
    if (seg[0] != "api") {
      auto e = Page(*target, res);
      if (e) return fail(*e);
      Log(req, who, res.status);
      return;
    }
    auto caller = Authenticate(req);
    if (!caller) return fail(caller.error());
    who = caller->name;
    for (const auto& r : routes_) {
      auto args = r.Match(seg);
      if (!args) continue;
      if (caller->role < r.role) {
        return fail(
            {403,
             fmt::format("the {} role may not read {}: it reads totals and checkpoints "
                         "(status, programmes, checkpoints, consistency proofs); this "
                         "endpoint needs the {} role",
                         ReadRoleName(caller->role), r.pattern, ReadRoleName(r.role)),
             tokens_ ? BearerChallenge("insufficient_scope") : Headers{},
             json{{"role", ReadRoleName(caller->role)}, {"required_role", ReadRoleName(r.role)}}});
      }
      Params p(target->query, r.params);
      if (p.bad()) return fail(*p.bad());
      auto out = r.run(*args, p);
      if (!out) return fail(FromError(out.error()));
      SendJson(res, *out);
      Log(req, who, res.status);
      return;
    }
    fail({404, fmt::format("no endpoint {} (see /openapi.json)", target->Path())});
  }

  // The errors cpp-httplib answers itself, before any handler runs: a malformed request
  // (400), a method it does not know (400 there, 501 here), a request line over its limit
  // (414), a bad Range (416). Their bodies would be empty; here they become JSON, and the
  // connection is closed, since the rest of such a request was never read.
  httplib::Server::HandlerResponse Error(const httplib::Request& req,
                                         httplib::Response& res) const {
    if (res.has_header("Content-Type")) return httplib::Server::HandlerResponse::Unhandled;
    HttpError e{res.status, fmt::format("the request failed (HTTP status {})", res.status)};
    static const std::set<std::string> kKnown = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                                 "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"};
    bool token =
        !req.method.empty() && std::all_of(req.method.begin(), req.method.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) ||
                 std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        });
    switch (res.status) {
      case 400:
        if (token && !kKnown.count(req.method) && !req.target.empty()) {
          e = {501,
               fmt::format("the method {} is not one this server implements; it answers GET "
                           "and HEAD",
                           ForLog(req.method)),
               {{"Allow", std::string(kAllow)}}};
        } else {
          e.message =
              "the request is not HTTP/1.1 this server can read: a malformed request line "
              "(METHOD /path HTTP/1.1) or header, or a header line over 8192 bytes";
        }
        break;
      case 413:
        e.message = "this read-only server takes no request content (a body)";
        break;
      case 414:
        e.message = fmt::format(
            "the request line is longer than the {} bytes this server reads; ask for less "
            "(e.g. a shorter id, fewer parameters)",
            CPPHTTPLIB_REQUEST_URI_MAX_LENGTH);
        break;
      case 416:
        e.message = "the Range header is malformed or asks for bytes the answer does not have";
        break;
      case 404:
        e.message = "nothing is at this path";
        break;
      default:
        break;
    }
    res.status = e.status;
    SendError(res, e);
    CloseAfter(res);
    Log(req, "-", res.status);
    return httplib::Server::HandlerResponse::Handled;
  }

 private:
  // /healthz, /readyz and /openapi.json: no credentials needed; none reveals more than the
  // public role reads.
  std::optional<HttpError> Unauthenticated(const RequestTarget& t, httplib::Response& res) const {
    if (!t.query.empty()) return HttpError{400, fmt::format("{} takes no parameters", t.Path())};
    const std::string& what = t.segments[0];
    if (what == "healthz") {
      SendJson(res, json{{"status", "ok"}});
    } else if (what == "readyz") {
      auto r = api_->Ready();
      if (!r) {
        return HttpError{
            503, fmt::format("not ready: the ledger cannot be read: {}", r.error().message())};
      }
      SendJson(res, *r);
    } else if (openapi_.empty()) {
      return HttpError{404, "no OpenAPI description was configured"};
    } else {
      res.set_header("Cache-Control", "no-cache");
      res.set_content(openapi_, "application/json");
    }
    return std::nullopt;
  }

  std::optional<HttpError> Page(const RequestTarget& t, httplib::Response& res) const {
    // Only "/" and "/NAME" for a NAME of the allow-list.
    auto f = t.segments.size() != 1  ? files_.end()
             : t.segments[0].empty() ? files_.find("index.html")
                                     : files_.find(t.segments[0]);
    if (f == files_.end()) {
      return HttpError{404,
                       fmt::format("nothing is at {}: the auditor's page is at /, the API under "
                                   "/api (see /openapi.json)",
                                   t.Path())};
    }
    if (!t.query.empty()) return HttpError{400, fmt::format("{} takes no parameters", t.Path())};
    res.set_header("Cache-Control", "no-cache");
    res.set_content(f->second.content, f->second.type);
    return std::nullopt;
  }

  // The caller's role from the credentials presented: a bearer token when tokens are
  // configured, else a verified client certificate, else the anonymous role if any.
  std::expected<Caller, HttpError> Authenticate(const httplib::Request& req) const {
    if (tokens_ && req.has_header("Authorization")) {
      if (req.get_header_value_count("Authorization") > 1) {
        return std::unexpected(HttpError{400, "the request has more than one Authorization header",
                                         BearerChallenge("invalid_request")});
      }
      auto token = BearerToken(req.get_header_value("Authorization"));
      if (!token)
        return std::unexpected(
            HttpError{400, token.error().message(), BearerChallenge("invalid_request")});
      if (!*token) {
        return std::unexpected(
            HttpError{401,
                      "this server takes bearer tokens only (Authorization: Bearer "
                      "<token>, RFC 6750)",
                      BearerChallenge("")});
      }
      const TokenEntry* e = tokens_->Find(**token);
      if (!e) {
        return std::unexpected(
            HttpError{401,
                      "the bearer token is not one this server accepts (unknown, or "
                      "removed from its tokens file)",
                      BearerChallenge("invalid_token")});
      }
      return Caller{e->name, e->role};
    }
    if (std::string cert = ClientCertificateName(req); !cert.empty()) {
      return Caller{cert, client_cert_role_};
    }
    if (anonymous_) return Caller{"anonymous", *anonymous_};
    return std::unexpected(
        HttpError{401,
                  tokens_ ? "this endpoint needs a bearer token: send Authorization: "
                            "Bearer <token>"
                          : "this endpoint needs a client certificate",
                  tokens_ ? BearerChallenge("") : Headers{}});
  }

  static void Log(const httplib::Request& req, std::string_view who, int status) {
    // Never a header (Authorization holds a credential), never a parameter's value.
    auto level = status == 401 || status == 403 ? spdlog::level::warn : spdlog::level::debug;
    spdlog::log(level, "serve: {} {} {} {} -> {}", ForLog(req.remote_addr), who, ForLog(req.method),
                TargetForLog(req.target), status);
  }

  std::shared_ptr<Api> api_;
  std::vector<Route> routes_;
  std::map<std::string, StaticFile> files_;
  std::string openapi_;
  std::optional<TokenTable> tokens_;
  std::optional<ReadRole> anonymous_;
  ReadRole client_cert_role_;
};

// The parameters of a Filter (Params::GetFilter), `source` only where payments are listed,
// and `more`.
std::set<std::string> FilterParams(bool source, std::initializer_list<std::string> more) {
  std::set<std::string> out = {"from",  "to",      "applicant", "programme",
                               "level", "min_fen", "max_fen"};
  if (source) out.insert("source");
  out.insert(more.begin(), more.end());
  return out;
}

Result<json> Json(const Result<QueryResult>& r) {
  if (!r) return Fail(r.error());
  return r->ToJson();
}

std::vector<Route> ApiRoutes(const std::shared_ptr<Api>& api) {
  using Args = std::vector<std::string>;
  auto paged = [](const Params& p, auto&& run) -> Result<json> {
    auto page = p.GetPage();
    if (!page) return Fail(page.error());
    auto r = run(*page);
    if (!r) return Fail(r.error());
    return r->ToJson();
  };
  auto period = [](const Params& p, auto&& run) -> Result<json> {
    auto v = p.GetPeriod();
    if (!v) return Fail(v.error());
    return run(*v);
  };
  auto filtered = [](const Params& p, auto&& run) -> Result<json> {
    auto f = p.GetFilter();
    if (!f) return Fail(f.error());
    return run(*f);
  };
  auto programmes = [api](const Args& a, const Params& p) -> Result<json> {
    auto year = p.GetYear();
    if (!year) return Fail(year.error());
    auto r = api->queries_.Utilisation(a.empty() ? "" : a[0], *year);
    if (!r) return Fail(r.error());
    return r->ToJson();
  };
  const ReadRole pub = ReadRole::kPublic, aud = ReadRole::kAuditor;
  std::vector<Route> routes = {
      {"/api/status", {}, pub, {}, [api](const Args&, const Params&) { return api->Status(); }},
      {"/api/programmes", {}, pub, {"year"}, programmes},
      {"/api/programmes/{programme}", {}, pub, {"year"}, programmes},
      {"/api/checkpoints",
       {},
       pub,
       {},
       [api](const Args&, const Params&) { return api->Checkpoints(); }},
      {"/api/checkpoints/{partition}",
       {},
       pub,
       {"limit", "after"},
       [api](const Args& a, const Params& p) { return api->CheckpointHistory(a[0], p); }},
      {"/api/checkpoints/{partition}/{size}",
       {},
       pub,
       {},
       [api](const Args& a, const Params&) { return api->CheckpointOfSize(a[0], a[1]); }},
      {"/api/consistency",
       {},
       pub,
       {"partition", "old", "new"},
       [api](const Args&, const Params& p) { return api->Consistency(p); }},
      {"/api/applicants/{applicant_id}",
       {},
       aud,
       // The applicant is the path's: an ?applicant= beside it would be ignored, so it is
       // refused as unknown, like every parameter an endpoint does not take.
       [] {
         auto params = FilterParams(true, {"limit", "after"});
         params.erase("applicant");
         return params;
       }(),
       [api, paged, filtered](const Args& a, const Params& p) {
         return filtered(p, [&](const Filter& f) {
           return paged(p,
                        [&](const Page& page) { return api->queries_.Applicant(a[0], page, f); });
         });
       }},
      {"/api/applicants/{applicant_id}/totals",
       {},
       aud,
       {},
       [api](const Args& a, const Params&) { return Json(api->queries_.Totals(a[0])); }},
      {"/api/applicants/{applicant_id}/headroom",
       {},
       aud,
       {},
       [api](const Args& a, const Params&) { return Json(api->queries_.Headroom(a[0])); }},
      {"/api/near-caps",
       {},
       aud,
       {"within", "limit", "after"},
       [api, paged](const Args&, const Params& p) -> Result<json> {
         int within = 10;
         if (std::string w = p.Get("within"); !w.empty()) {
           auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), within);
           if (ec != std::errc() || end != w.data() + w.size() || within < 0 || within > 100) {
             return Fail(Error::InvalidArgument("within must be a percentage from 0 to 100"));
           }
         }
         return paged(p, [&](const Page& page) { return api->queries_.NearCaps(within, page); });
       }},
      {"/api/payments",
       {},
       aud,
       FilterParams(true, {"limit", "after"}),
       [api, paged, filtered](const Args&, const Params& p) {
         return filtered(p, [&](const Filter& f) {
           return paged(p, [&](const Page& page) { return api->queries_.Payments(f, page); });
         });
       }},
      {"/api/rejections",
       {},
       aud,
       FilterParams(true, {"reason", "limit", "after"}),
       [api, paged, filtered](const Args&, const Params& p) {
         return filtered(p, [&](const Filter& f) {
           return paged(p, [&](const Page& page) {
             return api->queries_.Rejections(f, p.Get("reason"), page);
           });
         });
       }},
      {"/api/pending",
       {},
       aud,
       FilterParams(false, {"limit", "after"}),
       [api, paged, filtered](const Args&, const Params& p) {
         return filtered(p, [&](const Filter& f) {
           return paged(p, [&](const Page& page) { return api->queries_.Pending(f, page); });
         });
       }},
      {"/api/unpaid",
       {},
       aud,
       FilterParams(false, {"limit", "after"}),
       [api, paged, filtered](const Args&, const Params& p) {
         return filtered(p, [&](const Filter& f) {
           return paged(p, [&](const Page& page) { return api->queries_.Unpaid(f, page); });
         });
       }},
      {"/api/decisions",
       {},
       aud,
       FilterParams(false, {"key", "limit", "after"}),
       [api, paged, filtered](const Args&, const Params& p) {
         return filtered(p, [&](const Filter& f) {
           return paged(
               p, [&](const Page& page) { return api->queries_.Decisions(p.Get("key"), f, page); });
         });
       }},
      {"/api/catalogues",
       {},
       pub,
       {},
       [api](const Args&, const Params&) { return Json(api->queries_.Catalogues()); }},
      {"/api/double-funding",
       {},
       aud,
       {"limit", "after"},
       [api, paged](const Args&, const Params& p) {
         return paged(p, [&](const Page& page) { return api->queries_.DoubleFunding(page); });
       }},
      {"/api/overlaps",
       {},
       aud,
       {"limit", "after"},
       [api, paged](const Args&, const Params& p) {
         return paged(p, [&](const Page& page) { return api->queries_.Overlaps(page); });
       }},
      {"/api/outstanding",
       {},
       aud,
       {"limit", "after"},
       [api, paged](const Args&, const Params& p) {
         return paged(p, [&](const Page& page) { return api->queries_.Outstanding(page); });
       }},
      {"/api/clawbacks",
       {},
       aud,
       {"from", "to", "limit", "after"},
       [api, paged, period](const Args&, const Params& p) {
         return period(p, [&](const Period& v) {
           return paged(p, [&](const Page& page) { return api->queries_.Clawbacks(v, page); });
         });
       }},
      {"/api/proofs/{event_id}",
       {},
       aud,
       {"applicant"},
       [api](const Args& a, const Params& p) { return api->Proof(a[0], "", p.Find("applicant")); }},
      {"/api/proofs",
       {},
       aud,
       {"at"},
       [api](const Args&, const Params& p) -> Result<json> {
         if (p.Get("at").empty()) {
           return Fail(Error::InvalidArgument("give ?at=PARTITION:SEQUENCE"));
         }
         return api->Proof("", p.Get("at"), std::nullopt);
       }},
      {"/api/traces/{event_id}",
       {},
       aud,
       {"applicant"},
       [api](const Args& a, const Params& p) { return api->Trace(a[0], p.Find("applicant")); }},
  };
  for (auto& r : routes) {
    for (size_t start = 1; start <= r.pattern.size();) {
      size_t slash = r.pattern.find('/', start);
      if (slash == std::string::npos) slash = r.pattern.size();
      r.segments.push_back(r.pattern.substr(start, slash - start));
      start = slash + 1;
    }
  }
  return routes;
}

}  // namespace

ApiServer::~ApiServer() {
  Stop();
}

void ApiServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

namespace {

// What the front door needs besides the ledger, read from the options' files at start.
struct DoorInputs {
  std::optional<ReadRole> anonymous;
  std::optional<TokenTable> tokens;
  std::string openapi;
  std::map<std::string, StaticFile> files;
};

Result<DoorInputs> ReadDoorInputs(const ServeOptions& o) {
  DoorInputs in;
  auto anonymous = AnonymousRole(o);
  if (!anonymous) return Fail(anonymous.error());
  in.anonymous = *anonymous;
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return Fail(Error::InvalidArgument(
        "HTTPS needs both --tls-cert (the certificate chain) and --tls-key (its private key)"));
  }
  if (!o.tls_client_ca_file.empty() && o.tls_cert_file.empty()) {
    return Fail(Error::InvalidArgument(
        "--tls-client-ca asks clients for certificates over TLS: give --tls-cert and --tls-key "
        "too"));
  }
  if (!o.tokens_file.empty()) {
    std::vector<std::string> warnings;
    auto t = TokenTable::Load(o.tokens_file, &warnings);
    if (!t) return Fail(t.error());
    for (const auto& w : warnings)
      spdlog::warn("serve: {}", w);
    in.tokens = std::move(*t);
  }
  if (!o.openapi_path.empty()) {
    std::ifstream f(o.openapi_path);
    if (!f) return Fail(Error::NotFound("cannot read " + o.openapi_path));
    std::stringstream ss;
    ss << f.rdbuf();
    in.openapi = ss.str();
  }
  if (!o.web_dir.empty()) {
    auto f = LoadWebDir(o.web_dir);
    if (!f) return Fail(f.error());
    in.files = std::move(*f);
  }
  return in;
}

// An HTTPS server when a certificate is given, else plain HTTP.
Result<std::unique_ptr<httplib::Server>> NewServer(const ServeOptions& o) {
  if (o.tls_cert_file.empty()) return std::make_unique<httplib::Server>();
  std::string error;
  auto tls =
      std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) { return SetupTls(ctx, o, error); });
  if (!tls->is_valid()) {
    return Fail(
        Error::InvalidArgument(error.empty() ? "cannot set up TLS: " + OpenSslErrors() : error));
  }
  return std::unique_ptr<httplib::Server>(std::move(tls));
}

// Every request goes through the door; the library's own errors and any exception are
// turned into JSON.
void InstallDoor(httplib::Server& srv, const std::shared_ptr<FrontDoor>& door) {
  srv.set_default_headers(kDefaultHeaders);
  // cpp-httplib writes a response's head and body in two writes; with Nagle's algorithm
  // the body then waits for the client's delayed ACK, about 40 ms on every request of a
  // kept-alive connection (docs/performance.md, "HTTP").
  srv.set_tcp_nodelay(true);
  srv.set_pre_routing_handler([door](const httplib::Request& req, httplib::Response& res) {
    door->Handle(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  srv.set_error_handler(httplib::Server::HandlerWithResponse(
      [door](const httplib::Request& req, httplib::Response& res) {
        return door->Error(req, res);
      }));
  srv.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "an unexpected error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        spdlog::error("serve: {}", what);
        SendError(res, {500, "the server failed to answer: " + what});
      });
}

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const Ledger& ledger, const ServeOptions& o) {
  auto in = ReadDoorInputs(o);
  if (!in) return Fail(in.error());
  auto server = NewServer(o);
  if (!server) return Fail(server.error());
  std::unique_ptr<ApiServer> s(new ApiServer());
  s->server_ = std::move(*server);
  s->tls_ = !o.tls_cert_file.empty();
  auto api = std::make_shared<Api>(ledger, o);
  auto routes = ApiRoutes(api);
  for (const auto& r : routes)
    s->routes_.push_back({r.pattern, std::string(ReadRoleName(r.role))});
  s->routes_.push_back({"/healthz", ""});
  s->routes_.push_back({"/readyz", ""});
  auto door = std::make_shared<FrontDoor>(api, std::move(routes), std::move(in->files),
                                          std::move(in->openapi), std::move(in->tokens),
                                          in->anonymous, o.client_cert_role);
  httplib::Server& srv = *s->server_;
  InstallDoor(srv, door);
  int port =
      o.port == 0 ? srv.bind_to_any_port(o.host) : (srv.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) {
    return Fail(Error::FailedPrecondition(fmt::format(
        "cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port)));
  }
  s->port_ = port;
  s->thread_ = std::thread([srv_ptr = s->server_.get(), door] { srv_ptr->listen_after_bind(); });
  return s;
}

}  // namespace g60
