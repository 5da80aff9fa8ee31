#include "ops/serve.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "ledger/bundle.h"
#include "ledger/bytes.h"
#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "ledger/query.h"

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

namespace {

// A request that cannot be answered: its HTTP status and why.
struct HttpError {
  int status;
  std::string message;
};

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

void SendJson(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(j.dump(), "application/json");
}

void SendError(httplib::Response& res, const HttpError& e) {
  SendJson(res, json{{"error", e.message}, {"status", e.status}}, e.status);
}

// Query parameters, checked against what the endpoint accepts.
class Params {
 public:
  Params(const httplib::Request& req, std::set<std::string> allowed) : req_(req) {
    for (const auto& [k, v] : req.params) {
      if (!allowed.count(k) && !bad_)
        bad_ = HttpError{400, fmt::format("unknown parameter '{}'", k)};
    }
  }
  const std::optional<HttpError>& bad() const { return bad_; }
  std::string Get(const std::string& k) const {
    return req_.has_param(k) ? req_.get_param_value(k) : std::string();
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
  const httplib::Request& req_;
  std::optional<HttpError> bad_;
};

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
      auto nodes = MerkleNodes(*txn, t, h.partition);
      auto root = merkle::Root(nodes, h.size);
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
        // The signature, and that the signed root is the log's root at that size.
        json c{{"size", (*latest)->size}, {"note", (*latest)->note}};
        std::string problem;
        if (!key->first) {
          problem = "no key to check it with";
        } else if (auto text = note::Open((*latest)->note, *key->first); !text) {
          problem = text.error().message();
        } else if (auto cp = note::ParseCheckpoint(*text); !cp) {
          problem = cp.error().message();
        } else {
          c["root"] = Base64Encode(AsBytes(cp->root));
          auto at = merkle::Root(nodes, cp->size);
          if (!at) return Fail(at.error());
          if (*at != cp->root) problem = "the signed root is not the log's root at that size";
        }
        c["verified"] = problem.empty();
        c["problem"] = problem;
        all_ok = all_ok && problem.empty();
        covered += (*latest)->size;
        p["checkpoint"] = std::move(c);
      }
      out["partitions"].push_back(std::move(p));
    }
    out["entries"] = entries;
    out["entries_covered_by_checkpoints"] = covered;
    out["checkpoints_verified"] = all_ok;
    return out;
  }

  Result<json> Proof(std::string_view id, std::string_view at) const {
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
      auto found = FindEvent(*txn, ledger_.tables(), id);
      if (!found) return Fail(found.error());
      if (found->empty())
        return Fail(Error::NotFound(fmt::format("no event {} is on the record", id)));
      refs = *found;
    }
    return BuildBundle(ledger_, refs, "event", subject);
  }

  // A trace with each link's check, as verify-proof would give it.
  Result<json> Trace(std::string_view id) const {
    std::vector<EntryRef> refs;
    std::optional<note::Verifier> key;
    std::vector<std::string> anchors;
    {
      auto txn = lmdb::Txn::Begin(ledger_.env(), true);
      if (!txn) return Fail(txn.error());
      auto traced = TraceEntries(*txn, ledger_.tables(), id);
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
    return json{{"bundle", *bundle}, {"verification", verification}};
  }

  Result<json> Checkpoints() const {
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto heads = ReadHeads(*txn, ledger_.tables());
    if (!heads) return Fail(heads.error());
    json out = json::array();
    for (const auto& h : *heads) {
      auto latest = LatestCheckpoint(*txn, ledger_.tables(), h.partition);
      if (!latest) return Fail(latest.error());
      if (*latest) {
        out.push_back(
            {{"partition", h.partition}, {"size", (*latest)->size}, {"note", (*latest)->note}});
      }
    }
    return out;
  }

  Result<json> Consistency(const Params& p) const {
    uint32_t partition = 0;
    uint64_t old_size = 0, new_size = 0;
    auto num = [&](const char* name, auto& out) -> g60::Status {
      std::string v = p.Get(name);
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
      if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
        return Fail(Error::InvalidArgument(fmt::format("{} must be a non-negative integer", name)));
      }
      return {};
    };
    G60_TRY(num("partition", partition));
    G60_TRY(num("old", old_size));
    G60_TRY(num("new", new_size));
    if (old_size > new_size) return Fail(Error::InvalidArgument("old must not exceed new"));
    auto txn = lmdb::Txn::Begin(ledger_.env(), true);
    if (!txn) return Fail(txn.error());
    auto head = ReadHeads(*txn, ledger_.tables());
    if (!head) return Fail(head.error());
    uint64_t size = 0;
    for (const auto& h : *head)
      if (h.partition == partition) size = h.size;
    if (new_size > size) {
      return Fail(Error::NotFound(
          fmt::format("partition {} has {} entries, fewer than {}", partition, size, new_size)));
    }
    auto proof = merkle::ConsistencyProof(MerkleNodes(*txn, ledger_.tables(), partition), old_size,
                                          new_size);
    if (!proof) return Fail(proof.error());
    auto key = Key(*txn);
    if (!key) return Fail(key.error());
    json j{{"format", "g60ledger-consistency/v1"},
           {"origin", key->first ? CheckpointOrigin(key->first->name, partition) : ""},
           {"old_size", old_size},
           {"new_size", new_size},
           {"hashes", json::array()}};
    for (const auto& h : *proof)
      j["hashes"].push_back(Base64Encode(AsBytes(h)));
    return j;
  }

  const Ledger& ledger_;
  const ServeOptions o_;
  Queries queries_;
};

}  // namespace

ApiServer::~ApiServer() {
  Stop();
}

void ApiServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const Ledger& ledger, const ServeOptions& o) {
  std::unique_ptr<ApiServer> s(new ApiServer());
  s->server_ = std::make_unique<httplib::Server>();
  auto api = std::make_shared<Api>(ledger, o);
  httplib::Server& srv = *s->server_;
  std::string openapi;
  if (!o.openapi_path.empty()) {
    std::ifstream in(o.openapi_path);
    if (!in) return Fail(Error::NotFound("cannot read " + o.openapi_path));
    std::stringstream ss;
    ss << in.rdbuf();
    openapi = ss.str();
  }

  // Each handler: check the parameters, run, answer JSON or a JSON error.
  auto route = [&](const std::string& pattern, std::set<std::string> params,
                   std::function<Result<json>(const httplib::Request&, const Params&)> fn) {
    s->routes_.push_back(pattern);
    srv.Get(pattern, [params, fn](const httplib::Request& req, httplib::Response& res) {
      Params p(req, params);
      if (p.bad()) return SendError(res, *p.bad());
      auto out = fn(req, p);
      if (!out) return SendError(res, FromError(out.error()));
      SendJson(res, *out);
    });
  };
  auto paged = [](const Params& p, auto&& run) -> Result<json> {
    auto page = p.GetPage();
    if (!page) return Fail(page.error());
    auto r = run(*page);
    if (!r) return Fail(r.error());
    return r->ToJson();
  };
  route("/api/status", {}, [api](const auto&, const Params&) { return api->Status(); });
  route(R"(/api/applicants/([^/]+))", {"limit", "after"},
        [api, paged](const auto& req, const Params& p) {
          std::string id = req.matches[1];
          return paged(p, [&](const Page& page) { return api->queries_.Applicant(id, page); });
        });
  auto programmes = [api](const httplib::Request& req, const Params& p) -> Result<json> {
    auto year = p.GetYear();
    if (!year) return Fail(year.error());
    std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
    auto r = api->queries_.Utilisation(id, *year);
    if (!r) return Fail(r.error());
    return r->ToJson();
  };
  route("/api/programmes", {"year"}, programmes);
  route(R"(/api/programmes/([^/]+))", {"year"}, programmes);
  route("/api/payments", {"from", "to", "source", "level", "limit", "after"},
        [api, paged](const auto&, const Params& p) -> Result<json> {
          auto period = p.GetPeriod();
          if (!period) return Fail(period.error());
          return paged(p, [&](const Page& page) {
            return api->queries_.Payments(*period, p.Get("source"), p.Get("level"), page);
          });
        });
  route("/api/rejections", {"from", "to", "reason", "limit", "after"},
        [api, paged](const auto&, const Params& p) -> Result<json> {
          auto period = p.GetPeriod();
          if (!period) return Fail(period.error());
          return paged(p, [&](const Page& page) {
            return api->queries_.Rejections(*period, p.Get("reason"), page);
          });
        });
  route("/api/overlaps", {"limit", "after"}, [api, paged](const auto&, const Params& p) {
    return paged(p, [&](const Page& page) { return api->queries_.Overlaps(page); });
  });
  route("/api/outstanding", {"limit", "after"}, [api, paged](const auto&, const Params& p) {
    return paged(p, [&](const Page& page) { return api->queries_.Outstanding(page); });
  });
  route("/api/clawbacks", {"from", "to", "limit", "after"},
        [api, paged](const auto&, const Params& p) -> Result<json> {
          auto period = p.GetPeriod();
          if (!period) return Fail(period.error());
          return paged(p, [&](const Page& page) { return api->queries_.Clawbacks(*period, page); });
        });
  route(R"(/api/proofs/([^/]+))", {}, [api](const auto& req, const Params&) {
    return api->Proof(std::string(req.matches[1]), "");
  });
  route("/api/proofs", {"at"}, [api](const auto&, const Params& p) -> Result<json> {
    if (p.Get("at").empty()) return Fail(Error::InvalidArgument("give ?at=PARTITION:SEQUENCE"));
    return api->Proof("", p.Get("at"));
  });
  route(R"(/api/traces/([^/]+))", {},
        [api](const auto& req, const Params&) { return api->Trace(std::string(req.matches[1])); });
  route("/api/checkpoints", {}, [api](const auto&, const Params&) { return api->Checkpoints(); });
  route("/api/consistency", {"partition", "old", "new"},
        [api](const auto&, const Params& p) { return api->Consistency(p); });

  srv.Get("/openapi.json", [openapi](const httplib::Request&, httplib::Response& res) {
    if (openapi.empty()) return SendError(res, {404, "no OpenAPI description was configured"});
    res.set_content(openapi, "application/json");
  });
  srv.Get(R"(/api/.*)", [](const httplib::Request& req, httplib::Response& res) {
    SendError(res, {404, fmt::format("no endpoint {} (see /openapi.json)", req.path)});
  });
  if (!o.web_dir.empty() && !srv.set_mount_point("/", o.web_dir)) {
    return Fail(
        Error::NotFound(fmt::format("the web page's directory {} does not exist", o.web_dir)));
  }
  srv.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendError(res, {500, what});
      });
  srv.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("serve {} {} -> {}", req.method, req.path, res.status);
  });
  int port =
      o.port == 0 ? srv.bind_to_any_port(o.host) : (srv.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0) {
    return Fail(Error::FailedPrecondition(fmt::format(
        "cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port)));
  }
  s->port_ = port;
  s->thread_ = std::thread([srv_ptr = s->server_.get(), api] { srv_ptr->listen_after_bind(); });
  return s;
}

}  // namespace g60
