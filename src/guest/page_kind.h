// Where a page may live: movable pages (reached through handles, so they
// can be migrated) prefer Zone Movable; unmovable ones come only from Zone
// Normal, as in Linux.
#pragma once

#include <cstdint>

namespace cmm::guest {

enum class PageKind : uint8_t { kMovable, kUnmovable };

}  // namespace cmm::guest
