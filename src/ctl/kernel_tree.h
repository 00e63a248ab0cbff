// The guest kernel's files as a directory tree, for `cmm mount`:
//   sys/devices/system/cmm/cmm0/<attribute>   (the device group)
//   sys/module/cmm/parameters/<parameter>     (the parameters group)
//   proc/ppc64/lparcfg, proc/meminfo
// Pure: built from the partition's list of files; lookups by path.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cmm::ctl {

struct TreeFile {
  std::string op;     // the control request that reads it: "read", "lparcfg", "meminfo"
  std::string group;  // for "read"/"write": "device" or "parameters"
  std::string name;
  uint32_t mode = 0444;
  bool sysfs = false;  // sysfs files say 4096 bytes; /proc files say 0
};

struct TreeNode {
  bool dir = true;
  std::map<std::string, std::unique_ptr<TreeNode>> children;  // sorted, as ls shows them
  TreeFile file;
};

struct FileEntry {
  std::string name;
  std::string group;
  uint32_t mode = 0;
};

class KernelTree {
 public:
  explicit KernelTree(const std::vector<FileEntry>& files);
  // "/", "/sys/module", "/proc/meminfo"...; null when there is no such path.
  const TreeNode* Find(std::string_view path) const;

 private:
  TreeNode& Dir(std::string_view path);
  TreeNode root_;
};

}  // namespace cmm::ctl
