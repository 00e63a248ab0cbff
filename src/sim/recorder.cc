#include "sim/recorder.h"

#include <cstdio>
#include <fstream>
#include <set>

#include <fmt/format.h>

namespace cmm::sim {

namespace {
constexpr uint64_t kMiB = 1 << 20;
}  // namespace

tl::expected<Recorder, std::string> Recorder::Open(std::string path, Bytes pool_bytes) {
  Recorder r(std::move(path), pool_bytes);
  if (auto ok = r.Flush(); !ok) return tl::unexpected(ok.error());
  return r;
}

Recorder::Recorder(std::string path, Bytes pool_bytes) : path_(std::move(path)) {
  trace_.period_s = 1;
  trace_.pool_bytes = AsUnsigned(pool_bytes) / kMiB * kMiB;
}

void Recorder::Sample(uint32_t t_s, Bytes pool_bytes, const std::vector<hv::MemberView>& members) {
  if (sampled_ && t_s <= last_t_) return;  // once a second
  sampled_ = true;
  last_t_ = t_s;
  const uint64_t pool = AsUnsigned(pool_bytes) / kMiB * kMiB;
  const uint64_t last_pool = trace_.pool_changes.empty() ? trace_.pool_bytes : trace_.pool_changes.back().pool_bytes;
  if (pool != last_pool) trace_.pool_changes.push_back({t_s, pool});
  std::set<std::string> seen;
  for (const hv::MemberView& v : members) {
    seen.insert(v.name);
    auto it = present_.find(v.name);
    if (it == present_.end()) {
      MemberSpec m;
      // A name that comes back after leaving is a new member of the trace.
      m.name = v.name;
      for (const auto& other : trace_.members) {
        if (other.name == m.name) m.name = fmt::format("{}@{}", v.name, t_s);
      }
      m.ram_bytes = AsUnsigned(v.ram_bytes) / kMiB * kMiB;
      m.settings = v.settings;
      m.join_s = t_s;
      m.responsive = v.responsive;
      m.shape.kind = ShapeKind::kSamples;
      trace_.members.push_back(std::move(m));
      it = present_.emplace(v.name, trace_.members.size() - 1).first;
    }
    MemberSpec& m = trace_.members[it->second];
    m.responsive = m.responsive && v.responsive;
    const uint64_t used = AsUnsigned(v.stats.used_bytes) / kMiB * kMiB;
    const uint64_t cache = AsUnsigned(v.stats.cache_bytes) / kMiB * kMiB;
    Samples& s = m.samples;
    if (s.t_s.empty() || s.used.back() != used || s.cache.back() != cache) {
      s.t_s.push_back(t_s);
      s.used.push_back(used);
      s.cache.push_back(cache);
    }
  }
  for (auto it = present_.begin(); it != present_.end();) {
    if (seen.count(it->first) == 0) {
      MemberSpec& m = trace_.members[it->second];
      m.leave_s = std::max(t_s, m.join_s + 1);
      it = present_.erase(it);
    } else {
      ++it;
    }
  }
}

tl::expected<void, std::string> Recorder::Flush() {
  Trace out = trace_;
  // A member with nothing recorded yet replays as using nothing.
  for (MemberSpec& m : out.members) {
    if (m.samples.t_s.empty()) {
      m.samples.t_s.push_back(m.join_s);
      m.samples.used.push_back(0);
      m.samples.cache.push_back(0);
    }
  }
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!f) return tl::unexpected(fmt::format("cannot write {}", tmp));
    f << TraceJson(out) << "\n";
    if (!f.flush()) return tl::unexpected(fmt::format("cannot write {}", tmp));
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) return tl::unexpected(fmt::format("cannot rename to {}", path_));
  return {};
}

}  // namespace cmm::sim
