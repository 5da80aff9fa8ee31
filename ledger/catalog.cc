#include "ledger/catalog.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "ledger/bytes.h"

namespace g60 {

namespace {
constexpr int64_t kCstOffsetMs = 8 * 3600 * 1000;
constexpr uint32_t kFullRatioBp = 10000;
}  // namespace

const v1::Programme* CatalogIndex::Find(std::string_view id) const {
  auto it = programmes.find(id);
  return it == programmes.end() ? nullptr : it->second;
}

const v1::OverlapGroup* CatalogIndex::GroupOf(std::string_view programme) const {
  auto it = group_of.find(programme);
  return it == group_of.end() ? nullptr : it->second;
}

Result<int64_t> CstDateToMs(std::string_view date) {
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  std::string s(date);
  if (std::sscanf(s.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3 || s.size() != 10) {
    return Fail(Error::InvalidArgument(fmt::format("date '{}' is not YYYY-MM-DD", date)));
  }
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return Fail(Error::InvalidArgument(fmt::format("date '{}' does not exist", date)));
  auto days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  return static_cast<int64_t>(days) * 86400000 - kCstOffsetMs;
}

namespace {
// ms as a CST wall-clock time, clamped to years 0001..9999: a timestamp from outside
// (an event's occurred_at_ms, a Kafka record's) may be anything, and ms + 8 h would
// overflow near INT64_MAX (found by the ingest fuzzer).
std::chrono::sys_time<std::chrono::milliseconds> CstWallClock(int64_t ms) {
  return std::chrono::sys_time<std::chrono::milliseconds>(
      std::chrono::milliseconds(std::clamp(ms, kTimeMinMs, kTimeMaxMs) + kCstOffsetMs));
}
}  // namespace

int CstYear(int64_t ms) {
  auto days = std::chrono::floor<std::chrono::days>(CstWallClock(ms));
  return static_cast<int>(std::chrono::year_month_day{days}.year());
}

std::string FormatCstTime(int64_t ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t = CstWallClock(ms);
  const auto day = floor<days>(t);
  const hh_mm_ss<seconds> hms{floor<seconds>(t - day)};
  const year_month_day ymd{day};
  return fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d} CST", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

std::optional<int64_t> ApplyRatio(int64_t base_fen, uint32_t ratio_bp) {
  __int128 v = static_cast<__int128>(base_fen) * ratio_bp / kFullRatioBp;
  if (v > INT64_MAX || v < INT64_MIN) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::vector<std::string> CheckCatalog(const v1::Catalog& c) {
  std::vector<std::string> p;
  if (c.version().empty()) p.push_back("catalogue has no version");
  if (auto d = CstDateToMs(c.effective_from()); !d)
    p.push_back("effective_from: " + d.error().message());
  if (c.validity_years() < 1 || c.validity_years() > 50)
    p.push_back("validity_years must be 1..50");
  std::set<std::string> ids;
  for (const auto& g : c.programmes()) {
    std::string at = fmt::format("programme {}", g.id().empty() ? "(no id)" : g.id());
    if (g.id().empty() || g.id().size() > 64) p.push_back(at + ": id must be 1..64 characters");
    if (!ids.insert(g.id()).second) p.push_back(at + ": id appears twice");
    if (g.level() != v1::LEVEL_DISTRICT && g.level() != v1::LEVEL_MUNICIPAL) {
      p.push_back(at + ": level must be LEVEL_DISTRICT or LEVEL_MUNICIPAL");
    }
    if (g.ratio_bp() > kFullRatioBp) p.push_back(at + ": ratio_bp above 10000 (100%)");
    if (g.cap_fen() < 0 || g.fixed_fen() < 0 || g.yearly_cap_fen() < 0 || g.window_cap_fen() < 0) {
      p.push_back(at + ": amounts must be >= 0");
    }
    switch (g.kind()) {
      case v1::PROGRAMME_KIND_RATIO_CAPPED:
        if (g.ratio_bp() == 0 || g.cap_fen() <= 0)
          p.push_back(at + ": ratio-capped needs ratio_bp and cap_fen");
        break;
      case v1::PROGRAMME_KIND_FIXED_REWARD:
        if (g.fixed_fen() <= 0) p.push_back(at + ": fixed reward needs fixed_fen");
        break;
      case v1::PROGRAMME_KIND_TIERED_REWARD: {
        if (g.tiers().empty()) p.push_back(at + ": tiered reward needs tiers");
        int64_t last = -1;
        for (const auto& t : g.tiers()) {
          if (t.threshold_fen() <= last) p.push_back(at + ": tier thresholds must ascend");
          if (t.amount_fen() <= 0 || (g.cap_fen() > 0 && t.amount_fen() > g.cap_fen())) {
            p.push_back(at + ": tier amounts must be > 0 and within cap_fen");
          }
          last = t.threshold_fen();
        }
        break;
      }
      case v1::PROGRAMME_KIND_YEARLY_OPERATING:
        if (g.cap_fen() <= 0 || g.yearly_cap_fen() <= 0)
          p.push_back(at + ": yearly support needs cap_fen and yearly_cap_fen");
        break;
      case v1::PROGRAMME_KIND_CUMULATIVE:
        if (g.cap_fen() <= 0 || g.window_cap_fen() <= 0 || g.window_years() == 0) {
          p.push_back(at + ": cumulative support needs cap_fen, window_cap_fen and window_years");
        }
        break;
      case v1::PROGRAMME_KIND_CAPPED_AMOUNT:
        if (g.cap_fen() <= 0) p.push_back(at + ": capped amount needs cap_fen");
        break;
      default:
        p.push_back(at + ": kind is missing");
    }
  }
  std::set<std::string> grouped, group_ids;
  for (const auto& g : c.overlap_groups()) {
    std::string at = fmt::format("overlap group {}", g.id());
    if (g.id().empty() || !group_ids.insert(g.id()).second)
      p.push_back(at + ": id missing or repeated");
    if (g.mode() != v1::OverlapGroup::MODE_EXCLUSIVE &&
        g.mode() != v1::OverlapGroup::MODE_CO_FUNDED) {
      p.push_back(at + ": mode must be MODE_EXCLUSIVE or MODE_CO_FUNDED");
    }
    if (g.mode() == v1::OverlapGroup::MODE_CO_FUNDED &&
        (g.ratio_bp() == 0 || g.ratio_bp() > kFullRatioBp || g.cap_fen() <= 0)) {
      p.push_back(at + ": a co-funded group needs ratio_bp (1..10000) and cap_fen");
    }
    if (g.programmes_size() < 2) p.push_back(at + ": a group ties at least two programmes");
    // 从优、就高、不重复 compares like with like: a once-per-enterprise reward is judged per
    // enterprise, a project programme per project, so a group holds only one of the two.
    std::set<bool> once;
    for (const auto& id : g.programmes()) {
      if (!ids.contains(id))
        p.push_back(fmt::format("{}: programme {} is not in the catalogue", at, id));
      if (!grouped.insert(id).second)
        p.push_back(fmt::format("{}: programme {} is in two groups", at, id));
      for (const auto& prog : c.programmes())
        if (prog.id() == id) once.insert(prog.once_per_applicant());
    }
    if (once.size() > 1) {
      p.push_back(at +
                  ": mixes once-per-applicant rewards with per-project programmes; "
                  "make them all once_per_applicant or none");
    }
    if (g.mode() == v1::OverlapGroup::MODE_CO_FUNDED && once.contains(true)) {
      p.push_back(at +
                  ": a co-funded group funds projects; its programmes cannot be "
                  "once_per_applicant");
    }
  }
  return p;
}

Result<std::shared_ptr<const CatalogIndex>> IndexCatalog(std::string bytes) {
  auto idx = std::make_shared<CatalogIndex>();
  if (!idx->catalog.ParseFromString(bytes)) {
    return Fail(Error::InvalidArgument("the catalogue bytes are not a g60.v1.Catalog"));
  }
  if (auto problems = CheckCatalog(idx->catalog); !problems.empty()) {
    std::string all = problems.front();
    for (size_t i = 1; i < problems.size() && i < 5; ++i)
      all += "; " + problems[i];
    if (problems.size() > 5) all += fmt::format("; and {} more", problems.size() - 5);
    return Fail(Error::InvalidArgument(fmt::format("invalid catalogue: {}", all)));
  }
  idx->hash = Sha256(bytes);
  idx->bytes = std::move(bytes);
  idx->valid_from_ms = *CstDateToMs(idx->catalog.effective_from());
  int year = CstYear(idx->valid_from_ms) + static_cast<int>(idx->catalog.validity_years());
  std::string until = fmt::format("{:04d}{}", year, idx->catalog.effective_from().substr(4));
  if (until.substr(5) == "02-29") until = until.substr(0, 5) + "03-01";  // leap day: next valid day
  idx->valid_until_ms = *CstDateToMs(until);
  for (const auto& g : idx->catalog.programmes())
    idx->programmes.emplace(g.id(), &g);
  for (const auto& grp : idx->catalog.overlap_groups()) {
    for (const auto& id : grp.programmes())
      idx->group_of.emplace(id, &grp);
  }
  return std::shared_ptr<const CatalogIndex>(std::move(idx));
}

namespace {

// The first string field of `m` (depth first) that is not UTF-8, as a path such as
// "programmes[3].name"; nothing when all are.
std::optional<std::string> NonUtf8Field(const google::protobuf::Message& m) {
  const auto* r = m.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const auto* f : fields) {
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      std::string at = f->is_repeated() ? fmt::format("{}[{}]", f->name(), i) : f->name();
      if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
        std::string v = f->is_repeated() ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
        if (!ValidUtf8(v)) return at;
      } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        const auto& sub = f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f);
        if (auto inner = NonUtf8Field(sub)) return at + "." + *inner;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Result<v1::Catalog> ParseCatalogText(std::string_view text, std::string_view origin) {
  struct Collector : google::protobuf::io::ErrorCollector {
    std::string first;
    void AddError(int line, int column, const std::string& message) override {
      if (first.empty()) first = fmt::format("{}:{}: {}", line + 1, column + 1, message);
    }
  } errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  v1::Catalog c;
  if (!parser.ParseFromString(std::string(text), &c)) {
    return Fail(Error::InvalidArgument(fmt::format("{}:{}", origin, errors.first)));
  }
  // The text format writes any bytes into a string field through escapes ("\377"), but
  // a catalogue whose strings are not UTF-8 cannot be read back from its bytes: the
  // ledger would reject its publication as malformed. Found by the catalogue fuzzer.
  if (auto field = NonUtf8Field(c)) {
    return Fail(Error::InvalidArgument(
        fmt::format("{}: the text of {} is not UTF-8 (an escape such as \\377 gives bytes "
                    "that no reader can decode); write the characters themselves",
                    origin, *field)));
  }
  return c;
}

Result<v1::Catalog> LoadCatalogText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Fail(Error::NotFound("cannot read catalogue " + path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseCatalogText(ss.str(), path);
}

std::string SerializeCatalog(const v1::Catalog& catalog) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    G60_ASSERT(catalog.SerializeToCodedStream(&coded));
  }
  return out;
}

Result<std::shared_ptr<const CatalogIndex>> CatalogCache::Get(const Hash& hash,
                                                              std::string_view bytes) {
  std::lock_guard lock(mu_);
  if (auto it = by_hash_.find(hash); it != by_hash_.end()) return it->second;
  auto idx = IndexCatalog(std::string(bytes));
  if (!idx) return Fail(idx.error());
  if ((*idx)->hash != hash)
    return Fail(Error::DataLoss("stored catalogue does not match its hash"));
  by_hash_.emplace(hash, *idx);
  return *idx;
}

}  // namespace g60
