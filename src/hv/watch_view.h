// What `cmm hv watch` draws from the hypervisor's live JSON (LiveJson):
// a frame for a terminal (the pool bar, one row per member sorted by a key
// the user picks, the last events) or one line for a log.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hv/status.h"

namespace cmm::hv {

struct WatchSort {
  std::string key = "name";  // a MemberStatus field as serialised: name, ram_bytes, used_bytes, backing_bytes, ...
  bool largest_first = false;
};

// The keys a user presses to sort, and what each sorts by.
struct SortKey {
  char key;
  const char* field;
  const char* label;
};
const std::vector<SortKey>& SortKeys();
// Sorting by `k` first: names A to Z, numbers largest first.
WatchSort SortBy(const SortKey& k);
// The sort a key press asks for (the same key twice turns the order
// round), or nullptr for a key that does not sort.
const SortKey* FindSortKey(char key);
// "backing" -> the entry whose label it is, for --sort.
const SortKey* FindSortLabel(std::string_view label);

// Rows to fit in `width` columns; `events` are the newest last. Lines end
// in "\n"; no escape codes.
std::string WatchFrame(const HvStatus& status, const std::vector<std::string>& events, const WatchSort& sort,
                       int width, std::string_view clock);
// "16:50:01 pool 96 MiB, backing 8 MiB (8%), loaned 16 MiB, 2 members,
// 0 OOM events | alpha 8 MiB at target | beta 0 B at target"
std::string WatchLine(const HvStatus& status, std::string_view clock);

}  // namespace cmm::hv
