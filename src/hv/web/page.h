// The hypervisor's web page (src/hv/web/index.html, built into the
// binary): HTML, CSS and script in one document that asks `live` each
// second. Nothing is fetched from elsewhere.
#pragma once

#include <string_view>

namespace cmm::hv {

std::string_view PageHtml();

}  // namespace cmm::hv
