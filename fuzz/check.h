// What every fuzz target here shares: a broken promise is said with its
// line and then crashes, so libFuzzer keeps the input; and a quiet process
// (no log lines, no SIGPIPE from a peer that closed).
#pragma once

#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#define Check(ok)                                                                   \
  do {                                                                              \
    if (!(ok)) {                                                                    \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

inline void QuietProcess() {
  spdlog::set_level(spdlog::level::off);
  signal(SIGPIPE, SIG_IGN);
}
