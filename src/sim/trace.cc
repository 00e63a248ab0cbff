#include "sim/trace.h"

#include <array>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cmm::sim {

namespace {

constexpr uint64_t MiB = 1 << 20;
using json = nlohmann::json;

tl::unexpected<std::string> Err(std::string why) { return tl::unexpected(std::move(why)); }

// Fields are checked one by one so that a bad trace is refused with the
// member and field named.
template <typename T>
tl::expected<T, std::string> Field(const json& j, const char* key, T fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    return tl::unexpected(fmt::format("{}: \"{}\" has the wrong type", where, key));
  }
}

#define CMM_TRY(var, expr)                                 \
  auto var##_r = (expr);                                   \
  if (!var##_r) return tl::unexpected(var##_r.error());    \
  auto var = *var##_r

tl::expected<MemberSpec, std::string> ParseMember(const json& j, size_t index) {
  MemberSpec m;
  std::string where = fmt::format("members[{}]", index);
  if (!j.is_object()) return tl::unexpected(where + ": not an object");
  CMM_TRY(name, Field<std::string>(j, "name", fmt::format("m{}", index), where));
  m.name = name;
  where = fmt::format("member {}", m.name);
  CMM_TRY(ram, Field<uint64_t>(j, "ram_mb", 0, where));
  if (ram == 0) return tl::unexpected(where + ": \"ram_mb\" is required and must be above 0");
  m.ram_bytes = ram * MiB;
  CMM_TRY(weight, Field<unsigned>(j, "weight", 0, where));
  if (weight > 255) return tl::unexpected(where + ": \"weight\" must be 0-255");
  m.settings.weight = static_cast<uint8_t>(weight);
  CMM_TRY(min, Field<uint64_t>(j, "min_mb", 0, where));
  CMM_TRY(max, Field<uint64_t>(j, "max_mb", 0, where));
  if (min > ram || max > ram || (max != 0 && min > max)) {
    return tl::unexpected(where + ": \"min_mb\" and \"max_mb\" must be within \"ram_mb\", min not above max");
  }
  m.settings.min_bytes = FromUnsigned<Bytes>(min * MiB);
  m.settings.max_bytes = FromUnsigned<Bytes>(max * MiB);
  CMM_TRY(speed, Field<uint64_t>(j, "balloon_mb_s", 512, where));
  m.balloon_bytes_per_s = speed * MiB;
  CMM_TRY(join, Field<uint32_t>(j, "join_s", 0, where));
  CMM_TRY(leave, Field<uint32_t>(j, "leave_s", 0, where));
  if (leave != 0 && leave <= join) return tl::unexpected(where + ": \"leave_s\" must be after \"join_s\"");
  m.join_s = join;
  m.leave_s = leave;
  CMM_TRY(stall, Field<std::vector<uint32_t>>(j, "stall", {}, where));
  if (!stall.empty()) {
    if (stall.size() != 2 || stall[1] <= stall[0]) return tl::unexpected(where + ": \"stall\" is [from_s, to_s]");
    m.stall_from_s = stall[0];
    m.stall_to_s = stall[1];
  }
  CMM_TRY(responsive, Field<bool>(j, "responsive", true, where));
  m.responsive = responsive;
  if (j.contains("samples")) {
    const json& s = j.at("samples");
    CMM_TRY(t, Field<std::vector<uint32_t>>(s, "t_s", {}, where + " samples"));
    CMM_TRY(used, Field<std::vector<uint64_t>>(s, "used_mb", {}, where + " samples"));
    CMM_TRY(cache, Field<std::vector<uint64_t>>(s, "cache_mb", {}, where + " samples"));
    if (t.empty() || used.size() != t.size() || cache.size() != t.size()) {
      return tl::unexpected(where + ": samples need \"t_s\", \"used_mb\" and \"cache_mb\" of one length");
    }
    for (size_t i = 1; i < t.size(); ++i) {
      if (t[i] < t[i - 1]) return tl::unexpected(where + ": sample times must not go back");
    }
    m.shape.kind = ShapeKind::kSamples;
    m.samples.t_s = std::move(t);
    for (const uint64_t u : used) m.samples.used.push_back(std::min(u * MiB, m.ram_bytes));
    for (const uint64_t c : cache) m.samples.cache.push_back(std::min(c * MiB, m.ram_bytes));
    return m;
  }
  if (!j.contains("shape")) return tl::unexpected(where + ": needs a \"shape\" or \"samples\"");
  const json& s = j.at("shape");
  const std::string sw = where + " shape";
  CMM_TRY(kind, Field<std::string>(s, "kind", "steady", sw));
  const auto k = ShapeByName(kind);
  if (!k || *k == ShapeKind::kSamples) {
    return tl::unexpected(sw + ": \"kind\" is one of steady, web, batch, idle, leak");
  }
  Shape shape;
  shape.kind = *k;
  CMM_TRY(base, Field<float>(s, "base", shape.base, sw));
  CMM_TRY(peak, Field<float>(s, "peak", shape.peak, sw));
  CMM_TRY(cache, Field<float>(s, "cache", shape.cache, sw));
  for (const float share : {base, peak, cache}) {
    if (!(share >= 0 && share <= 1)) return tl::unexpected(sw + ": shares of RAM are between 0 and 1");
  }
  shape.base = base;
  shape.peak = peak;
  shape.cache = cache;
  CMM_TRY(every, Field<uint32_t>(s, "every_s", shape.every_s, sw));
  CMM_TRY(length, Field<uint32_t>(s, "length_s", shape.length_s, sw));
  CMM_TRY(fill, Field<uint32_t>(s, "cache_fill_s", shape.cache_fill_s, sw));
  if (every == 0) return tl::unexpected(sw + ": \"every_s\" must be above 0");
  shape.every_s = every;
  shape.length_s = length;
  shape.cache_fill_s = fill;
  m.shape = shape;
  return m;
}

}  // namespace

tl::expected<Trace, std::string> ParseTrace(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return tl::unexpected(fmt::format("not JSON: {}", e.what()));
  }
  if (!j.is_object()) return Err("a trace is a JSON object");
  Trace t;
  CMM_TRY(version, Field<int>(j, "version", 1, "trace"));
  if (version != 1) return tl::unexpected(fmt::format("trace version {} is not known (this cmm reads 1)", version));
  CMM_TRY(period, Field<uint32_t>(j, "period_s", 1, "trace"));
  if (period == 0) return Err("trace: \"period_s\" must be above 0");
  t.period_s = period;
  CMM_TRY(pool, Field<uint64_t>(j, "pool_mb", 0, "trace"));
  t.pool_bytes = pool * MiB;
  if (j.contains("pool_changes")) {
    if (!j.at("pool_changes").is_array()) return Err("trace: \"pool_changes\" is a list");
    for (const json& c : j.at("pool_changes")) {
      CMM_TRY(at, Field<uint32_t>(c, "at_s", 0, "pool_changes"));
      CMM_TRY(mb, Field<uint64_t>(c, "pool_mb", 0, "pool_changes"));
      if (mb == 0) return Err("pool_changes: \"pool_mb\" must be above 0");
      t.pool_changes.push_back({at, mb * MiB});
    }
  }
  if (!j.contains("members") || !j.at("members").is_array() || j.at("members").empty()) {
    return Err("trace: \"members\" is a list of at least one member");
  }
  size_t i = 0;
  for (const json& m : j.at("members")) {
    CMM_TRY(member, ParseMember(m, i++));
    t.members.push_back(std::move(member));
  }
  return t;
}

std::string TraceJson(const Trace& t) {
  json j;
  j["version"] = 1;
  j["period_s"] = t.period_s;
  if (t.pool_bytes != 0) j["pool_mb"] = t.pool_bytes / MiB;
  if (!t.pool_changes.empty()) {
    j["pool_changes"] = json::array();
    for (const auto& c : t.pool_changes) j["pool_changes"].push_back({{"at_s", c.at_s}, {"pool_mb", c.pool_bytes / MiB}});
  }
  j["members"] = json::array();
  for (const MemberSpec& m : t.members) {
    json o = {{"name", m.name},
              {"ram_mb", m.ram_bytes / MiB},
              {"weight", m.settings.weight},
              {"min_mb", AsUnsigned(m.settings.min_bytes) / MiB},
              {"max_mb", AsUnsigned(m.settings.max_bytes) / MiB},
              {"balloon_mb_s", m.balloon_bytes_per_s / MiB}};
    if (m.join_s != 0) o["join_s"] = m.join_s;
    if (m.leave_s != 0) o["leave_s"] = m.leave_s;
    if (m.stall_to_s != 0) o["stall"] = {m.stall_from_s, m.stall_to_s};
    if (!m.responsive) o["responsive"] = false;
    if (m.shape.kind == ShapeKind::kSamples) {
      json used = json::array(), cache = json::array();
      for (const uint64_t u : m.samples.used) used.push_back(u / MiB);
      for (const uint64_t c : m.samples.cache) cache.push_back(c / MiB);
      o["samples"] = {{"t_s", m.samples.t_s}, {"used_mb", used}, {"cache_mb", cache}};
    } else {
      // Shares to a thousandth: a float's last digits say nothing.
      auto share = [](float v) { return std::round(static_cast<double>(v) * 1000) / 1000; };
      o["shape"] = {{"kind", ShapeName(m.shape.kind)}, {"base", share(m.shape.base)},  {"peak", share(m.shape.peak)},
                    {"cache", share(m.shape.cache)},    {"every_s", m.shape.every_s}, {"length_s", m.shape.length_s},
                    {"cache_fill_s", m.shape.cache_fill_s}};
    }
    j["members"].push_back(std::move(o));
  }
  return j.dump(1);
}

Trace GenerateFleet(uint32_t members, uint64_t seed) {
  uint64_t state = seed;
  auto next = [&state] { return SplitMix64(state); };
  auto uniform = [&next](double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(next() >> 11) / static_cast<double>(1ULL << 53);
  };
  constexpr std::array<uint64_t, 5> kRamMb = {512, 1024, 2048, 4096, 8192};
  Trace t;
  t.members.reserve(members);
  for (uint32_t i = 0; i < members; ++i) {
    MemberSpec m;
    const uint32_t pick = static_cast<uint32_t>(next() % 100);
    Shape s;
    // 40% bursty web, 20% steady, 15% batch, 15% idle, 10% leaking.
    if (pick < 40) {
      s = {ShapeKind::kWeb, float(uniform(0.15, 0.35)), float(uniform(0.5, 0.8)), float(uniform(0.2, 0.5)),
           uint32_t(uniform(300, 1800)), uint32_t(uniform(30, 300)), uint32_t(uniform(600, 3600))};
    } else if (pick < 60) {
      s = {ShapeKind::kSteady, float(uniform(0.3, 0.6)), 0, float(uniform(0.2, 0.4)), 600, 0,
           uint32_t(uniform(900, 3600))};
    } else if (pick < 75) {
      s = {ShapeKind::kBatch, float(uniform(0.05, 0.15)), float(uniform(0.6, 0.85)), float(uniform(0.3, 0.6)),
           uint32_t(uniform(1200, 3600)), uint32_t(uniform(300, 900)), uint32_t(uniform(600, 1800))};
    } else if (pick < 90) {
      s = {ShapeKind::kIdle, float(uniform(0.03, 0.1)), 0, float(uniform(0.02, 0.1)), 600, 0, 3600};
    } else {
      s = {ShapeKind::kLeak, float(uniform(0.1, 0.2)), float(uniform(0.6, 0.9)), float(uniform(0.1, 0.2)),
           uint32_t(uniform(1800, 7200)), 0, 1800};
    }
    m.shape = s;
    m.name = fmt::format("{}-{}", ShapeName(s.kind), i);
    m.ram_bytes = kRamMb[next() % kRamMb.size()] * MiB;
    m.settings.weight = static_cast<uint8_t>(next() % 256);
    m.settings.min_bytes = FromUnsigned<Bytes>(m.ram_bytes / 8);
    m.balloon_bytes_per_s = static_cast<uint64_t>(uniform(128, 2048)) * MiB;
    if (next() % 100 == 0) {
      m.stall_from_s = static_cast<uint32_t>(uniform(0, 3000));
      m.stall_to_s = m.stall_from_s + static_cast<uint32_t>(uniform(30, 600));
    }
    m.responsive = next() % 200 != 0;
    t.members.push_back(std::move(m));
  }
  return t;
}

}  // namespace cmm::sim
