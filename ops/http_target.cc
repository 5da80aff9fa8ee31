#include "ops/http_target.h"

#include <fmt/format.h>

namespace g60 {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The next code point of UTF-8 `s` at `i` (RFC 3629 §4: no overlong forms, no
// surrogates, nothing above U+10FFFF); -1 when the bytes there are not UTF-8.
int32_t NextCodePoint(std::string_view s, size_t& i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  size_t n = 0;
  int32_t cp = 0, min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 1, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 2, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  for (size_t k = 1; k <= n; ++k) {
    if (i + k >= s.size() || (byte(i + k) & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += n + 1;
  return cp;
}

// For messages: the segment with the characters that would change its meaning in a
// path ('/', '%', '?', '#', space) percent-encoded, everything else as it is.
std::string ShowSegment(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '/' || c == '%' || c == '?' || c == '#' || c == ' ') {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string TextProblem(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    int32_t cp = NextCodePoint(text, i);
    if (cp < 0) {
      return fmt::format("{} is not UTF-8 text (byte 0x{:02X} at offset {})", what,
                         static_cast<unsigned char>(text[at]), at);
    }
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return fmt::format("{} holds a control character (U+{:04X}), which no name or id has", what,
                         cp);
    }
  }
  return {};
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space,
                                  std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      bool two_follow = i + 2 < text.size();
      int hi = two_follow ? HexValue(text[i + 1]) : -1;
      int lo = two_follow ? HexValue(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Fail(Error::InvalidArgument(
            fmt::format("{} has a '%' that is not followed by two hexadecimal digits; a "
                        "character is percent-encoded as %XX (RFC 3986 §2.1), e.g. '/' as %2F",
                        what)));
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  if (std::string problem = TextProblem(out, what); !problem.empty()) {
    return Fail(Error::InvalidArgument(std::move(problem)));
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string RequestTarget::Path() const {
  std::string out;
  for (const auto& s : segments)
    out += "/" + ShowSegment(s);
  return out.empty() ? "/" : out;
}

Result<RequestTarget> ParseRequestTarget(std::string_view raw) {
  if (raw.empty() || raw.front() != '/') {
    return Fail(Error::InvalidArgument(
        "the request target must be a path starting with '/' (origin-form, RFC 9112 §3.2.1)"));
  }
  // Raw control bytes (a TAB, a DEL) are refused before anything is decoded.
  for (char c : raw) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      return Fail(Error::InvalidArgument(fmt::format(
          "the request target holds a control character (0x{:02X}), which no name or id has", u)));
    }
  }
  std::string_view path = raw, query;
  if (size_t q = raw.find('?'); q != std::string_view::npos) {
    path = raw.substr(0, q);
    query = raw.substr(q + 1);
  }
  RequestTarget t;
  for (size_t start = 1;;) {
    size_t slash = path.find('/', start);
    std::string_view seg =
        path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    auto decoded = PercentDecode(seg, false, "the path");
    if (!decoded) return Fail(decoded.error());
    t.segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  for (size_t start = 0; start < query.size();) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? query.npos : amp - start);
    start = amp == std::string_view::npos ? query.size() : amp + 1;
    if (pair.empty()) continue;  // "a=1&&b=2": an empty pair says nothing
    size_t eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq), true, "a query parameter's name");
    if (!name) return Fail(name.error());
    if (name->empty()) {
      return Fail(Error::InvalidArgument("a query parameter has no name (\"=value\" alone)"));
    }
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true,
                               fmt::format("parameter '{}'", *name));
    if (!value) return Fail(value.error());
    for (const auto& [n, v] : t.query) {
      if (n == *name) {
        return Fail(Error::InvalidArgument(
            fmt::format("parameter '{}' is given twice; give it once", *name)));
      }
    }
    t.query.emplace_back(std::move(*name), std::move(*value));
  }
  return t;
}

}  // namespace g60
