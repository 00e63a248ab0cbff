#include "core/params.h"

#include <cerrno>
#include <limits>

#include "core/ktext.h"

namespace cmm {

namespace {

template <class T>
int Store(T& field, std::string_view text) {
  const auto v = ktext::ParseUnsigned(text, std::numeric_limits<T>::max());
  if (!v) return v.error();
  field = static_cast<T>(*v);
  return 0;
}

// kstrtobool: the first character decides; "on"/"off" need the second.
int StoreBool(bool& field, std::string_view text) {
  if (text.empty()) return EINVAL;
  switch (text[0]) {
    case 'y': case 'Y': case '1': field = true; return 0;
    case 'n': case 'N': case '0': field = false; return 0;
    case 'o': case 'O':
      if (text.size() > 1 && (text[1] == 'n' || text[1] == 'N')) { field = true; return 0; }
      if (text.size() > 1 && (text[1] == 'f' || text[1] == 'F')) { field = false; return 0; }
      return EINVAL;
    default: return EINVAL;
  }
}

}  // namespace

int SetParamAtStart(ParamValues& v, std::string_view key, std::string_view text) {
  if (key == "delay") return Store(v.delay, text);
  if (key == "hotplug_delay") return Store(v.hotplug_delay, text);
  if (key == "oom_kb") return Store(v.oom_kb, text);
  if (key == "min_mem_mb") return Store(v.min_mem_mb, text);
  if (key == "debug") return Store(v.debug, text);
  if (key == "simulate") return StoreBool(v.simulate, text);
  if (key == "disable") {
    const auto d = ktext::ParseDisable(text);
    if (!d) return d.error();
    v.disable = *d ? 1 : 0;
    return 0;
  }
  return ENOENT;
}

}  // namespace cmm
