#include "guest/workload_spec.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/size_text.h"

namespace cmm::guest {

namespace {

tl::expected<uint64_t, std::string> Size(const std::string& text, const std::string& what) {
  const auto v = ParseSize(text);
  if (!v) return tl::unexpected(fmt::format("{} \"{}\" is not a size; try 256M or 1G", what, text));
  return *v;
}

tl::expected<uint64_t, std::string> Rate(std::string text) {
  if (text.ends_with("/s")) text.resize(text.size() - 2);
  return Size(text, "rate");
}

tl::expected<uint64_t, std::string> JsonSize(const nlohmann::json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) return Size(v.get<std::string>(), what);
  return tl::unexpected(fmt::format("{} must be a size such as \"256M\" or a number of bytes", what));
}

}  // namespace

tl::expected<WorkloadSpec, std::string> ParsePhases(std::string_view json, std::string text) {
  const auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return tl::unexpected(std::string("phases: not a JSON object"));
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kPhases;
  spec.text = std::move(text);
  const std::string kind = doc.value("kind", "movable");
  if (kind != "movable" && kind != "unmovable") {
    return tl::unexpected(fmt::format("phases: kind \"{}\" must be movable or unmovable", kind));
  }
  spec.page_kind = kind == "movable" ? PageKind::kMovable : PageKind::kUnmovable;
  if (doc.contains("rate")) {
    auto rate = JsonSize(doc["rate"], "phases: rate");
    if (!rate) return tl::unexpected(rate.error());
    spec.rate = *rate;
  }
  if (doc.contains("repeat_after")) {
    if (!doc["repeat_after"].is_number() || doc["repeat_after"].get<double>() <= 0) {
      return tl::unexpected(std::string("phases: repeat_after must be a positive number of seconds"));
    }
    spec.repeat_after_s = doc["repeat_after"].get<double>();
  }
  if (!doc.contains("phases") || !doc["phases"].is_array() || doc["phases"].empty()) {
    return tl::unexpected(std::string("phases: needs a non-empty array \"phases\" of {\"at\": SECONDS, \"size\": SIZE}"));
  }
  for (size_t i = 0; i < doc["phases"].size(); ++i) {
    const auto& p = doc["phases"][i];
    if (!p.is_object() || !p.contains("at") || !p["at"].is_number() || p["at"].get<double>() < 0 ||
        !p.contains("size")) {
      return tl::unexpected(fmt::format("phases[{}]: needs \"at\" (seconds, >= 0) and \"size\"", i));
    }
    auto bytes = JsonSize(p["size"], fmt::format("phases[{}].size", i));
    if (!bytes) return tl::unexpected(bytes.error());
    const double at = p["at"].get<double>();
    if (!spec.phases.empty() && at <= spec.phases.back().at_s) {
      return tl::unexpected(fmt::format("phases[{}]: \"at\" must increase", i));
    }
    if (spec.repeat_after_s > 0 && at >= spec.repeat_after_s) {
      return tl::unexpected(fmt::format("phases[{}]: starts after repeat_after", i));
    }
    spec.phases.push_back({at, *bytes});
  }
  return spec;
}

tl::expected<WorkloadSpec, std::string> ParseWorkload(std::string_view text) {
  const std::string s(text);
  const auto colon = s.find(':');
  if (colon == std::string::npos) {
    return tl::unexpected(fmt::format("workload \"{}\": expected KIND:ARG, e.g. hog:256M, unmovable:16M, cache:512M, "
                                      "phases:FILE.json",
                                      s));
  }
  const std::string kind = s.substr(0, colon);
  const std::string rest = s.substr(colon + 1);
  auto fail = [&](const std::string& why) { return tl::unexpected(fmt::format("workload \"{}\": {}", s, why)); };
  if (kind == "phases") {
    std::ifstream in(rest);
    if (!in) return fail(fmt::format("cannot read {}", rest));
    std::stringstream buf;
    buf << in.rdbuf();
    auto spec = ParsePhases(buf.str(), s);
    if (!spec) return fail(spec.error());
    return spec;
  }
  WorkloadSpec spec;
  spec.text = s;
  if (kind == "hog") {
    spec.kind = WorkloadKind::kHog;
  } else if (kind == "unmovable") {
    spec.kind = WorkloadKind::kUnmovable;
    spec.page_kind = PageKind::kUnmovable;
  } else if (kind == "cache") {
    spec.kind = WorkloadKind::kCache;
  } else {
    return fail(fmt::format("unknown kind \"{}\"; kinds are hog, unmovable, cache, phases", kind));
  }
  const auto colon2 = rest.find(':');
  auto bytes = Size(rest.substr(0, colon2), "size");
  if (!bytes) return fail(bytes.error());
  if (*bytes == 0) return fail("size must be more than 0");
  spec.bytes = *bytes;
  if (colon2 != std::string::npos) {
    auto rate = Rate(rest.substr(colon2 + 1));
    if (!rate) return fail(rate.error());
    spec.rate = *rate;
  }
  return spec;
}

uint64_t TargetBytes(const WorkloadSpec& spec, double seconds) {
  if (spec.kind != WorkloadKind::kPhases) return spec.bytes;
  if (spec.repeat_after_s > 0) seconds = std::fmod(seconds, spec.repeat_after_s);
  uint64_t bytes = 0;
  for (const Phase& p : spec.phases) {
    if (p.at_s > seconds) break;
    bytes = p.bytes;
  }
  return bytes;
}

}  // namespace cmm::guest
