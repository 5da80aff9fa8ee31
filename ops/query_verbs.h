// The compliance officer's verbs: `query` (applicant, totals, headroom, near-caps,
// programme, payments, rejections, pending, unpaid, decisions, catalogues, overlaps,
// double-funding, outstanding, clawbacks), `export` (entries as NDJSON or CSV from a
// position), `serve` (the HTTP API and the auditor's page) and `token` (bearer tokens
// for serve). docs/queries.md describes every answer.
#pragma once

#include <optional>
#include <string>

#include "ledger/query.h"
#include "ops/common.h"

namespace CLI {
class App;
}

namespace g60 {

class QueryVerbs {
 public:
  QueryVerbs(CLI::App& app, Common& common);
  std::optional<int> Run();

 private:
  int Query();
  int Export();
  int Serve();
  int Token();
  Result<QueryResult> RunOne(const Queries& q, const Page& page) const;

  Common& common_;
  CLI::App *query_ = nullptr, *export_ = nullptr, *serve_ = nullptr, *token_ = nullptr;
  CLI::App *applicant_ = nullptr, *programme_ = nullptr, *payments_ = nullptr,
           *rejections_ = nullptr, *overlaps_ = nullptr, *outstanding_ = nullptr,
           *clawbacks_ = nullptr, *totals_ = nullptr, *headroom_ = nullptr, *near_caps_ = nullptr,
           *pending_ = nullptr, *unpaid_ = nullptr, *decisions_ = nullptr, *catalogues_ = nullptr,
           *double_funding_ = nullptr;
  std::string id_, from_, to_, source_, level_, reason_, after_, applicant_id_, programme_id_,
      key_id_;
  int64_t min_fen_ = INT64_MIN, max_fen_ = INT64_MAX;
  int year_ = 0, within_ = 10;
  size_t limit_ = 100;
  bool json_ = false, csv_ = false, all_ = false;
  std::string format_ = "ndjson", position_file_, out_;
  std::string positions_;
  std::string listen_ = "127.0.0.1:8060", web_dir_, openapi_, ledger_key_;
  std::string tls_cert_, tls_key_, tls_client_ca_, client_cert_role_, tokens_, allow_anonymous_;
  std::string token_name_, token_role_;  // token
};

}  // namespace g60
