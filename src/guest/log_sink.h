// The partition's printk: controller lines go to spdlog.
#pragma once

#include <spdlog/spdlog.h>

#include "core/ports.h"

namespace cmm::guest {

class SpdlogSink final : public LogSink {
 public:
  void Info(std::string_view line) override { spdlog::info("{}", line); }
  void Error(std::string_view line) override { spdlog::error("{}", line); }
};

}  // namespace cmm::guest
