// The request target of an HTTP request, read strictly: `serve` routes on the path
// segments decoded here, never on a path decoded as a whole, so that an id holding a
// '/' (sent as %2F) stays one segment, and a byte the ledger's names never hold (a NUL,
// a line break) cannot reach a handler or a log line.
//
// Rules, in the order they are checked (each failure is InvalidArgument with a sentence
// an API user can act on):
//   - the target is in origin-form, "/" path [ "?" query ] (RFC 9112 §3.2.1);
//   - every '%' starts a percent-encoded octet, '%' and two hexadecimal digits
//     (RFC 3986 §2.1); cpp-httplib would pass "%zz" and "%u00e9" on as they are;
//   - the path is split at '/' into segments (RFC 3986 §3.3) *before* each segment is
//     percent-decoded, so "a%2Fb" is the one segment "a/b";
//   - the query is split at '&' into name=value pairs, each decoded as
//     application/x-www-form-urlencoded ('+' is a space; WHATWG URL Standard §5.1), and
//     a name given twice is an error (never "the first one wins");
//   - no decoded segment, name or value holds a control character (U+0000..U+001F,
//     U+007F..U+009F) or bytes that are not UTF-8 (RFC 3629).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ledger/status.h"

namespace g60 {

struct RequestTarget {
  // The decoded path segments: "/" gives {""}, "/api/proofs/a%2Fb" {"api", "proofs", "a/b"}.
  std::vector<std::string> segments;
  // The decoded query parameters in the order given, each name once.
  std::vector<std::pair<std::string, std::string>> query;

  // "/" and the segments joined with '/', each re-encoded where it needs it: for
  // messages and logs, never for routing.
  std::string Path() const;
};

// Parses a raw request target (the bytes between the method and the HTTP version).
Result<RequestTarget> ParseRequestTarget(std::string_view raw);

// Decodes one percent-encoded component; `plus_is_space` for query names and values.
// `what` names the component in the error ("the path", "parameter 'after'").
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space, std::string_view what);

// Percent-encodes every byte of `text` but RFC 3986's unreserved characters
// (ALPHA / DIGIT / "-" / "." / "_" / "~"), as a path segment or a query value needs.
std::string PercentEncode(std::string_view text);

// Where `text` breaks the rules above for decoded text (a control character, or bytes
// that are not UTF-8), in words naming `what`; empty when it keeps them.
std::string TextProblem(std::string_view text, std::string_view what);

}  // namespace g60
