// `cmm hv --record FILE`: a real run's members written as a trace that
// `cmm sim --trace` replays. Each member's terms and when it joined and
// left, and what it used and cached, once a second (a sample only when a
// value changed). The file is rewritten whole (to a temporary file, then
// renamed) every `flush_every` and at the end, so a crash loses at most
// that much.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "pool/pool.h"
#include "sim/trace.h"

namespace cmm::sim {

class Recorder {
 public:
  // Checks that `path` can be written before the run starts.
  static tl::expected<Recorder, std::string> Open(std::string path, Bytes pool_bytes);

  // The pool's members now, `t_s` seconds into the run.
  void Sample(uint32_t t_s, Bytes pool_bytes, const std::vector<hv::MemberView>& members);
  // Writes the trace; an error says why it could not.
  tl::expected<void, std::string> Flush();
  const std::string& path() const { return path_; }
  size_t members() const { return trace_.members.size(); }

 private:
  Recorder(std::string path, Bytes pool_bytes);
  std::string path_;
  Trace trace_;
  std::map<std::string, size_t> present_;  // name -> index in trace_.members, while in the pool
  uint32_t last_t_ = 0;
  bool sampled_ = false;
};

}  // namespace cmm::sim
