#include "ops/query_verbs.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "ledger/bytes.h"
#include "ledger/entry.h"
#include "ledger/event_view.h"
#include "ops/serve.h"

namespace g60 {

using nlohmann::json;

QueryVerbs::QueryVerbs(CLI::App& app, Common& common) : common_(common) {
  query_ = app.add_subcommand("query", "answer a compliance question from the ledger's indexes");
  query_->require_subcommand(1);
  auto shared = [this, &common](CLI::App* sub) {
    common.AddLedger(sub);
    sub->add_flag("--json", json_, "one JSON object: columns, rows, summary, next");
    sub->add_flag("--csv", csv_, "CSV (RFC 4180) of the rows");
    sub->add_option("--limit", limit_, "rows per page (1..10000)");
    sub->add_option("--after", after_, "continue after this page token (printed as 'more:')");
    sub->add_flag("--all", all_, "every page, one after the other");
  };
  auto period = [this](CLI::App* sub) {
    sub->add_option("--from", from_, "from YYYY-MM-DD[THH:MM:SS] (China Standard Time), inclusive");
    sub->add_option("--to", to_, "to YYYY-MM-DD[THH:MM:SS] (China Standard Time), exclusive");
  };
  // The filters of docs/queries.md, "Filters": each narrows the rows and the summary.
  auto filters = [this, &period](CLI::App* sub, bool applicant, bool source) {
    period(sub);
    if (applicant) sub->add_option("--applicant", applicant_id_, "one applicant id");
    sub->add_option("--programme", programme_id_, "one programme id (e.g. G60-07b)");
    sub->add_option("--level", level_, "DISTRICT or MUNICIPAL (the programme's level)");
    if (source) {
      sub->add_option("--source", source_,
                      "DISTRICT_SPECIAL_FUND, DISTRICT_FISCAL or MUNICIPAL_FISCAL");
    }
    sub->add_option("--min-fen", min_fen_, "smallest amount, fen (inclusive)");
    sub->add_option("--max-fen", max_fen_, "largest amount, fen (inclusive)");
  };
  applicant_ = query_->add_subcommand("applicant", "an applicant's full history, with totals");
  applicant_->add_option("id", id_, "applicant id (unified social credit code)")->required();
  filters(applicant_, false, true);
  shared(applicant_);
  totals_ = query_->add_subcommand(
      "totals", "an applicant's money per year: approved, entitlement, paid, clawed back, net");
  totals_->add_option("id", id_, "applicant id")->required();
  shared(totals_);
  headroom_ = query_->add_subcommand(
      "headroom", "an applicant's yearly, window and co-funding caps and once-only rewards used");
  headroom_->add_option("id", id_, "applicant id")->required();
  shared(headroom_);
  near_caps_ = query_->add_subcommand("near-caps", "applicants within a percentage of a cap");
  near_caps_->add_option("--within", within_, "headroom at most this % of the cap (0..100)");
  shared(near_caps_);
  pending_ = query_->add_subcommand("pending", "accepted applications without an approval");
  filters(pending_, true, false);
  shared(pending_);
  unpaid_ = query_->add_subcommand("unpaid", "live approvals of which nothing has been paid");
  filters(unpaid_, true, false);
  shared(unpaid_);
  decisions_ = query_->add_subcommand("decisions", "approvals by the key that signed them");
  decisions_->add_option("--key", key_id_, "one key id (default: every key)");
  filters(decisions_, true, false);
  shared(decisions_);
  catalogues_ = query_->add_subcommand(
      "catalogues", "every catalogue published: version, hash, validity, where published");
  shared(catalogues_);
  double_funding_ = query_->add_subcommand(
      "double-funding",
      "possible double funding for review: one applicant, one overlap group, different projects");
  shared(double_funding_);
  programme_ = query_->add_subcommand(
      "programme",
      "utilisation per year against the caps: applications, approved, paid, clawed back");
  programme_->add_option("id", id_, "programme id (default: every programme)");
  programme_->add_option("--year", year_, "one calendar year (CST), 1970..9999")
      ->check(CLI::Range(1970, 9999));
  shared(programme_);
  payments_ = query_->add_subcommand("payments", "stage payments in a period, by source and level");
  filters(payments_, true, true);
  shared(payments_);
  rejections_ = query_->add_subcommand("rejections", "rejected entries in a period, by reason");
  filters(rejections_, true, true);
  rejections_->add_option("--reason", reason_, "one reason (e.g. EXCEEDS_CAP)");
  shared(rejections_);
  overlaps_ = query_->add_subcommand(
      "overlaps", "从优、就高、不重复: superseded and duplicate approvals with the winning one");
  shared(overlaps_);
  outstanding_ = query_->add_subcommand("outstanding", "approved stages not yet paid");
  shared(outstanding_);
  clawbacks_ = query_->add_subcommand("clawbacks", "clawbacks in a period, with what they recover");
  period(clawbacks_);
  shared(clawbacks_);

  export_ = app.add_subcommand(
      "export",
      "write entries as NDJSON or CSV, from a position, for analysts and finance systems");
  common.AddLedger(export_);
  export_->add_option("--format", format_, "ndjson (default) or csv")
      ->check(CLI::IsMember({"ndjson", "csv"}));
  export_->add_option("--position-file", position_file_,
                      "start where this file says (if it exists) and write the end position "
                      "to it after the export");
  export_->add_option("--from", positions_,
                      "start position PARTITION:SEQUENCE,... (partitions not named start at 0)");
  export_->add_option("-o,--out", out_, "output file (default: standard output)");

  serve_ = app.add_subcommand(
      "serve", "read-only HTTP API (JSON) and the auditor's web page, beside a running ingest");
  common.AddLedger(serve_);
  serve_->add_option("--listen", listen_, "HOST:PORT to listen on (default 127.0.0.1:8060)");
  web_dir_ = G60_DEFAULT_WEB_DIR;
  openapi_ = G60_DEFAULT_OPENAPI;
  serve_->add_option("--web", web_dir_,
                     "directory of the web page (default: the repository's web/)");
  serve_->add_option("--openapi", openapi_, "OpenAPI description served at /openapi.json");
  serve_->add_option("--ledger-key", ledger_key_,
                     "verifier key to check checkpoints with (default [checkpoint] verifier, "
                     "else the key the ledger names)");
  serve_->add_option("--tls-cert", tls_cert_,
                     "serve HTTPS with this certificate chain (PEM, the server's first)");
  serve_->add_option("--tls-key", tls_key_, "the private key of --tls-cert (PEM)");
  serve_->add_option("--tls-client-ca", tls_client_ca_,
                     "require client certificates signed by this CA (PEM): mutual TLS");
  serve_->add_option("--client-cert-role", client_cert_role_,
                     "role of a client certificate without a bearer token: public or auditor "
                     "(default auditor)");
  serve_->add_option("--tokens", tokens_,
                     "bearer tokens and their roles (a file of NAME ROLE sha256:HEX lines; "
                     "`g60ledger token` makes them)");
  serve_->add_option("--allow-anonymous", allow_anonymous_,
                     "role of a request without credentials: public or auditor (default: "
                     "refused when --tokens or --tls-client-ca is given; on a loopback "
                     "address without them, auditor)");

  token_ = app.add_subcommand(
      "token", "make a bearer token for `serve --tokens`: prints the token once, and its line");
  token_->add_option("--name", token_name_, "who holds it (1..64 of A-Z a-z 0-9 . _ @ -)")
      ->required();
  token_->add_option("--role", token_role_, "public or auditor")->required();
  token_->add_option("--tokens", tokens_,
                     "append its line to this tokens file (created mode 0600 if missing)");
}

std::optional<int> QueryVerbs::Run() {
  if (*query_) return Query();
  if (*export_) return Export();
  if (*serve_) return Serve();
  if (*token_) return Token();
  return std::nullopt;
}

Result<QueryResult> QueryVerbs::RunOne(const Queries& q, const Page& page) const {
  Filter filter;
  filter.applicant_id = applicant_id_;
  filter.programme = programme_id_;
  filter.level = level_;
  filter.source = source_;
  filter.min_fen = min_fen_;
  filter.max_fen = max_fen_;
  Period& period = filter.period;
  if (!from_.empty()) {
    auto f = ParseCstTime(from_, "--from");
    if (!f) return Fail(f.error());
    period.from_ms = *f;
  }
  if (!to_.empty()) {
    auto t = ParseCstTime(to_, "--to");
    if (!t) return Fail(t.error());
    period.to_ms = *t;
  }
  if (*applicant_) return q.Applicant(id_, page, filter);
  if (*totals_) return q.Totals(id_);
  if (*headroom_) return q.Headroom(id_);
  if (*near_caps_) return q.NearCaps(within_, page);
  if (*pending_) return q.Pending(filter, page);
  if (*unpaid_) return q.Unpaid(filter, page);
  if (*decisions_) return q.Decisions(key_id_, filter, page);
  if (*catalogues_) return q.Catalogues();
  if (*double_funding_) return q.DoubleFunding(page);
  if (*programme_) return q.Utilisation(id_, year_);
  if (*payments_) return q.Payments(filter, page);
  if (*rejections_) return q.Rejections(filter, reason_, page);
  if (*overlaps_) return q.Overlaps(page);
  if (*outstanding_) return q.Outstanding(page);
  return q.Clawbacks(period, page);
}

int QueryVerbs::Query() {
  if (json_ && csv_) return Report(Error::InvalidArgument("--json and --csv exclude each other"));
  auto opened = OpenForReading(common_);
  if (!opened) return Report(opened.error());
  Queries q(*opened->ledger);
  QueryResult all;
  // --all reads page after page, each in its own snapshot; the answer is one snapshot's
  // only if every page was read at the same position (nothing committed in between).
  // Otherwise it starts again, a few times, and then says so rather than mix positions.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    Page page{limit_, after_};
    bool mixed = false;
    for (bool first = true;; first = false) {
      auto r = RunOne(q, page);
      if (!r) return Report(r.error());
      if (!all_) {
        all = std::move(*r);
        break;
      }
      if (first) {
        all = *r;
      } else if (r->position != all.position) {
        mixed = true;
        break;
      } else {
        for (auto& row : r->rows)
          all.rows.push_back(std::move(row));
      }
      all.next.clear();
      if (r->next.empty()) break;
      page.after = r->next;
    }
    if (!mixed) break;
    if (attempt == kAttempts) {
      return Report(Error::Unavailable(fmt::format(
          "the ledger grew while --all read its pages, {} times in a row: read the pages one "
          "by one with --after (each states its position), or try again",
          kAttempts)));
    }
  }
  std::string text = json_ ? all.ToJson().dump(2) + "\n" : csv_ ? FormatCsv(all) : FormatTable(all);
  std::fwrite(text.data(), 1, text.size(), stdout);
  // CSV stays rows only, so that a spreadsheet reads it whole; the position goes to stderr.
  if (csv_ && !all.position.is_null()) {
    std::fprintf(stderr, "%s\n", FormatPosition(all.position).c_str());
  }
  return 0;
}

namespace {

Result<std::map<uint32_t, uint64_t>> ParsePositions(std::string_view text) {
  std::map<uint32_t, uint64_t> out;
  std::stringstream ss{std::string(text)};
  std::string item;
  while (std::getline(ss, item, ',')) {
    unsigned p = 0;
    unsigned long long s = 0;
    char tail = 0;
    if (std::sscanf(item.c_str(), "%u:%llu%c", &p, &s, &tail) != 2) {
      return Fail(
          Error::InvalidArgument(fmt::format("position '{}' is not PARTITION:SEQUENCE", item)));
    }
    out[p] = s;
  }
  return out;
}

}  // namespace

int QueryVerbs::Export() {
  auto opened = OpenForReading(common_);
  if (!opened) return Report(opened.error());
  const Ledger& ledger = *opened->ledger;
  std::map<uint32_t, uint64_t> start;
  if (!positions_.empty()) {
    auto p = ParsePositions(positions_);
    if (!p) return Report(p.error());
    start = *p;
  } else if (!position_file_.empty() && std::filesystem::exists(position_file_)) {
    std::ifstream in(position_file_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
      text.pop_back();
    auto p = ParsePositions(text);
    if (!p) return Report(p.error().Context(position_file_));
    start = *p;
  }
  auto txn = lmdb::Txn::Begin(ledger.env(), true);
  if (!txn) return Report(txn.error());
  auto heads = ReadHeads(*txn, ledger.tables());
  if (!heads) return Report(heads.error());
  // Where the export goes. A regular file (or a new one) is written beside it and renamed
  // over it once complete; anything else that exists (a symlink, a device, a pipe) is
  // written through as it is, never replaced by a regular file.
  std::FILE* out = stdout;
  std::string tmp, target = "standard output";
  if (!out_.empty() && out_ != "-") {
    std::error_code ec;
    auto st = std::filesystem::symlink_status(out_, ec);
    bool replace = ec || st.type() == std::filesystem::file_type::not_found ||
                   st.type() == std::filesystem::file_type::regular;
    target = replace ? out_ + ".tmp" : out_;
    if (replace) tmp = target;
    out = std::fopen(target.c_str(), "wb");
    if (!out) {
      return Report(Error::FailedPrecondition(
          fmt::format("cannot write {}: {}", target, std::strerror(errno))));
    }
  }
  // A write that fails (a full disk) ends the export with the position unmoved, so that
  // the next incremental export starts where this one did.
  auto failed = [&](const char* what) {
    int err = errno;
    if (out != stdout) std::fclose(out);
    if (!tmp.empty()) std::filesystem::remove(tmp);
    return Report(Error::ResourceExhausted(
        fmt::format("export: {} {} failed ({}): the export is incomplete, and the position is "
                    "unchanged, so the next export repeats it",
                    what, target, std::strerror(err))));
  };
  auto write = [&](const std::string& s) {
    return std::fwrite(s.data(), 1, s.size(), out) == s.size();
  };
  const std::vector<std::string> columns = {
      "partition", "sequence",   "offset",       "kafka_timestamp_ms", "occurred_at_ms",
      "type",      "event_id",   "applicant_id", "programme",          "verdict",
      "reason",    "amount_fen", "detail",       "entry_hash"};
  if (format_ == "csv") {
    std::string header;
    for (size_t i = 0; i < columns.size(); ++i)
      header += (i ? "," : "") + columns[i];
    if (!write(header + "\r\n")) return failed("writing to");
  }
  uint64_t written = 0;
  std::string end_position;
  for (const auto& h : *heads) {
    uint64_t from = start.count(h.partition) ? start[h.partition] : 0;
    if (from > h.size) {
      return Report(
          Error::InvalidArgument(fmt::format("position {}:{} is beyond partition {}'s {} entries",
                                             h.partition, from, h.partition, h.size)));
    }
    for (uint64_t s = from; s < h.size; ++s) {
      auto v = txn->Get(ledger.tables().entries, EntryKey(h.partition, s));
      if (!v || !*v)
        return Report(Error::DataLoss(fmt::format("entry {}/{} is missing", h.partition, s)));
      auto e = DecodeEntry(**v);
      if (!e) return Report(e.error());
      DecodedMessage msg = DecodeMessage(e->body.value());
      const auto& b = e->body;
      json row = EntryBodyFields(b);
      row["partition"] = h.partition;
      row["sequence"] = s;
      row["offset"] = b.source().offset();
      row["kafka_timestamp_ms"] = b.source().timestamp_ms();
      row["occurred_at_ms"] = msg.event.occurred_at_ms();
      row["entry_hash"] = HexEncode(AsBytes(EntryHash(**v)));
      if (format_ == "ndjson") {
        if (!write(row.dump() + "\n")) return failed("writing to");
      } else {
        std::string line;
        for (size_t i = 0; i < columns.size(); ++i) {
          const json& c = row[columns[i]];
          line += (i ? "," : "") + CsvField(c.is_string() ? c.get<std::string>() : c.dump());
        }
        line += "\r\n";
        if (!write(line)) return failed("writing to");
      }
      ++written;
    }
    end_position += fmt::format("{}{}:{}", end_position.empty() ? "" : ",", h.partition, h.size);
  }
  // Flushed and on disk before the position moves past it.
  if (std::fflush(out) != 0 || std::ferror(out)) return failed("writing to");
  if (::fsync(::fileno(out)) != 0 && errno != EINVAL && errno != EROFS) {
    return failed("syncing");  // (a pipe or a terminal cannot be synced: EINVAL)
  }
  if (out != stdout) {
    if (std::fclose(out) != 0) {
      out = stdout;  // closed, whatever it said
      return failed("closing");
    }
    out = stdout;
    if (!tmp.empty()) {
      std::error_code ec;
      std::filesystem::rename(tmp, out_, ec);
      if (ec) {
        return Report(Error::FailedPrecondition(
            fmt::format("export: renaming {} to {}: {}", tmp, out_, ec.message())));
      }
    }
  }
  if (!position_file_.empty()) {
    std::string ptmp = position_file_ + ".tmp";
    std::ofstream pos(ptmp);
    pos << end_position << "\n";
    pos.close();
    std::error_code ec;
    if (pos) std::filesystem::rename(ptmp, position_file_, ec);
    if (!pos || ec) {
      return Report(Error::ResourceExhausted(fmt::format(
          "export: the entries were written, but the position file {} could not be updated; "
          "the next export with it repeats them",
          position_file_)));
    }
  }
  std::fprintf(stderr, "export: %llu entr%s; next position %s\n",
               static_cast<unsigned long long>(written), written == 1 ? "y" : "ies",
               end_position.c_str());
  return 0;
}

}  // namespace g60

namespace g60 {

int QueryVerbs::Serve() {
  auto opened = OpenForReading(common_);
  if (!opened) return Report(opened.error());
  auto listen = ParseListen(listen_);
  if (!listen) return Report(listen.error());
  ServeOptions o;
  o.host = listen->first;
  o.port = listen->second;
  o.web_dir = web_dir_;
  o.openapi_path = openapi_;
  o.tls_cert_file = tls_cert_;
  o.tls_key_file = tls_key_;
  o.tls_client_ca_file = tls_client_ca_;
  o.tokens_file = tokens_;
  if (!client_cert_role_.empty()) {
    auto r = ParseReadRole(client_cert_role_, "--client-cert-role");
    if (!r) return Report(r.error());
    o.client_cert_role = *r;
  }
  if (!allow_anonymous_.empty()) {
    auto r = ParseReadRole(allow_anonymous_, "--allow-anonymous");
    if (!r) return Report(r.error());
    o.anonymous_role = *r;
  }
  std::string key = ledger_key_.empty() ? opened->config.checkpoint_verifier : ledger_key_;
  if (!key.empty()) {
    auto v = note::ParseVerifierKey(key);
    if (!v) return Report(v.error().Context("--ledger-key"));
    o.ledger_key = *v;
  }
  auto server = ApiServer::Start(*opened->ledger, o);
  if (!server) return Report(server.error());
  auto anonymous = AnonymousRole(o);
  std::string access =
      !o.tokens_file.empty() || !o.tls_client_ca_file.empty()
          ? fmt::format("{}{}{}", o.tokens_file.empty() ? "" : "bearer tokens",
                        o.tokens_file.empty() || o.tls_client_ca_file.empty() ? "" : " or ",
                        o.tls_client_ca_file.empty() ? "" : "client certificates")
          : "no credentials";
  std::string anon = anonymous && *anonymous
                         ? fmt::format("anonymous requests read as {}", ReadRoleName(**anonymous))
                         : "anonymous requests refused";
  std::printf(
      "serve: %s://%s:%d/ (API under /api, description at /openapi.json); ledger %s; access: "
      "%s, %s\n",
      (*server)->tls() ? "https" : "http", o.host.c_str(), (*server)->port(),
      opened->config.ledger_dir.c_str(), access.c_str(), anon.c_str());
  if (!(*server)->tls() && !IsLoopbackHost(o.host)) {
    spdlog::warn(
        "serve: plain HTTP on {}: credentials and answers cross the network unencrypted; give "
        "--tls-cert and --tls-key, or put a TLS proxy in front and listen on loopback",
        o.host);
  }
  std::fflush(stdout);
  InstallSignalHandlers();
  while (!g_stop.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*server)->Stop();
  std::printf("serve: stopped\n");
  return 0;
}

int QueryVerbs::Token() {
  if (!ValidTokenName(token_name_)) {
    return Report(Error::InvalidArgument(
        fmt::format("--name '{}' is not a token name (1 to 64 of A-Z a-z 0-9 . _ @ -)",
                    PrintableBytes(token_name_))));
  }
  auto role = ParseReadRole(token_role_, "--role");
  if (!role) return Report(role.error());
  std::string token = NewBearerToken();
  std::string line = TokenFileLine(token_name_, *role, token);
  if (!tokens_.empty()) {
    // The file must stay one serve accepts: its mode, and every line with the new one.
    std::string text;
    if (std::filesystem::exists(tokens_)) {
      if (auto mode = CheckTokensFileMode(tokens_, nullptr); !mode) return Report(mode.error());
      std::ifstream in(tokens_, std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      text = s.str();
    }
    std::string sep = text.empty() || text.back() == '\n' ? "" : "\n";
    if (auto check = TokenTable::Parse(text + sep + line + "\n", tokens_); !check) {
      return Report(check.error());
    }
    int fd = ::open(tokens_.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0) {
      return Report(Error::FailedPrecondition(
          fmt::format("cannot write the tokens file {}: {}", tokens_, std::strerror(errno))));
    }
    std::string out = sep + line + "\n";
    bool ok = ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) {
      return Report(Error::ResourceExhausted(
          fmt::format("could not write the whole line to {}: {}", tokens_, std::strerror(errno))));
    }
    std::fprintf(stderr, "token: added %s (%s) to %s; restart serve to use it\n",
                 token_name_.c_str(), std::string(ReadRoleName(*role)).c_str(), tokens_.c_str());
  } else {
    std::fprintf(stderr, "token: add this line to the tokens file of serve --tokens:\n%s\n",
                 line.c_str());
  }
  // The token itself, once: the file keeps only its hash.
  std::printf("%s\n", token.c_str());
  return 0;
}

}  // namespace g60
