#include "members/libvirt/domain_terms.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "core/json_fields.h"
#include "core/size_text.h"

namespace cmm::hv {

namespace {

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == ':' || c == '.';
}

}  // namespace

Result<DomainTerms> ParseDomainTerms(std::string_view xml, const std::string& domain, Bytes ram) {
  auto bad = [&domain](const std::string& why) {
    return Fail(ErrorCode::kInvalid, fmt::format("domain {}: its cmm terms in <metadata>: {}", domain, why));
  };
  // One empty element: <[prefix:]terms attr="value" .../>
  size_t i = xml.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos || xml[i] != '<') return bad("not an element");
  size_t name_end = i + 1;
  while (name_end < xml.size() && IsNameChar(xml[name_end])) ++name_end;
  const std::string_view name = xml.substr(i + 1, name_end - i - 1);
  if (name != "terms" && name != fmt::format("{}:terms", kTermsPrefix)) {
    return bad(fmt::format("<{}> is not <terms>", Printable(name, 40)));
  }
  DomainTerms t;
  i = name_end;
  for (;;) {
    i = xml.find_first_not_of(" \t\r\n", i);
    if (i == std::string_view::npos) return bad("the element does not end");
    if (xml.substr(i, 2) == "/>" || xml[i] == '>') break;
    size_t eq = i;
    while (eq < xml.size() && IsNameChar(xml[eq])) ++eq;
    const std::string_view key = xml.substr(i, eq - i);
    if (key.empty() || eq + 1 >= xml.size() || xml[eq] != '=' || (xml[eq + 1] != '"' && xml[eq + 1] != '\'')) {
      return bad("an attribute that is not name=\"value\"");
    }
    const char quote = xml[eq + 1];
    const size_t end = xml.find(quote, eq + 2);
    if (end == std::string_view::npos) return bad("an attribute's value does not end");
    const std::string value(xml.substr(eq + 2, end - eq - 2));
    i = end + 1;
    if (key == "weight") {
      unsigned w = 0;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), w);
      if (ec != std::errc() || p != value.data() + value.size() || w > 255) {
        return bad(fmt::format("weight \"{}\" is not 0-255", Printable(value, 40)));
      }
      t.weight = static_cast<uint8_t>(w);
    } else if (key == "min" || key == "max") {
      const auto bytes = ParseBytes(value);
      if (!bytes || *bytes > ram) {
        return bad(fmt::format("{} \"{}\" is not a size within its {} of RAM", key, Printable(value, 40),
                               FormatBytes(ram)));
      }
      (key == "min" ? t.min_bytes : t.max_bytes) = *bytes;
    } else if (key == "manage") {
      if (value != "yes" && value != "no") return bad(fmt::format("manage \"{}\" is not yes or no", Printable(value, 40)));
      t.manage = value == "yes";
    }
    // Other attributes (xmlns, a later version's) are someone else's.
  }
  if (t.min_bytes && t.max_bytes && *t.max_bytes != Bytes(0) && *t.min_bytes > *t.max_bytes) {
    return bad("min is above max");
  }
  return t;
}

std::string DomainTermsXml(const MemberSettings& terms, bool manage) {
  return fmt::format("<terms weight=\"{}\" min=\"{}\" max=\"{}\" manage=\"{}\"/>", terms.weight,
                     AsUnsigned(terms.min_bytes), AsUnsigned(terms.max_bytes), manage ? "yes" : "no");
}

}  // namespace cmm::hv
