#include "core/ktext.h"

#include <cerrno>

#include <fmt/format.h>

namespace cmm::ktext {

namespace {

std::string_view UpToNul(std::string_view t) {
  const auto nul = t.find('\0');
  return nul == std::string_view::npos ? t : t.substr(0, nul);
}

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

bool IsHexDigit(char c) { return DigitValue(c) < 16; }

}  // namespace

tl::expected<uint64_t, int> ParseUnsigned(std::string_view text, uint64_t max) {
  std::string_view s = UpToNul(text);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);

  unsigned base = 10;
  if (!s.empty() && s[0] == '0') {
    if (s.size() >= 3 && (s[1] == 'x' || s[1] == 'X') && IsHexDigit(s[2])) {
      base = 16;
      s.remove_prefix(2);
    } else {
      base = 8;  // the leading 0 is itself an octal digit
    }
  }

  uint64_t value = 0;
  size_t digits = 0;
  bool overflow = false;
  for (; digits < s.size(); ++digits) {
    const int d = DigitValue(s[digits]);
    if (d >= static_cast<int>(base)) break;
    if (value > (UINT64_MAX - static_cast<uint64_t>(d)) / base) overflow = true;
    value = value * base + static_cast<uint64_t>(d);
  }
  // The kernel's order: a 64-bit overflow is ERANGE before the rest of the
  // text is looked at; then no digits or anything after them is EINVAL;
  // then a value too large for the type is ERANGE.
  if (overflow) return tl::unexpected(ERANGE);
  if (digits == 0) return tl::unexpected(EINVAL);
  s.remove_prefix(digits);
  if (!s.empty() && s[0] == '\n') s.remove_prefix(1);
  if (!s.empty()) return tl::unexpected(EINVAL);
  if (value > max) return tl::unexpected(ERANGE);
  return value;
}

uint64_t SimpleStrtoul10(std::string_view text) {
  uint64_t value = 0;
  for (char c : UpToNul(text)) {
    if (c < '0' || c > '9') break;
    value = value * 10 + static_cast<uint64_t>(c - '0');  // wraps, as the kernel's
  }
  return value;
}

tl::expected<bool, int> ParseDisable(std::string_view text) {
  const auto v = static_cast<int32_t>(static_cast<uint32_t>(SimpleStrtoul10(text)));
  if (v != 0 && v != 1) return tl::unexpected(EINVAL);
  return v == 1;
}

std::string Decimal(uint64_t v) { return fmt::format("{}\n", v); }
std::string Hex(uint64_t v) { return fmt::format("{:x}\n", v); }
std::string YesNo(bool v) { return v ? "Y\n" : "N\n"; }

}  // namespace cmm::ktext
