#include "ctl/kernel_tree.h"

#include <tuple>

namespace cmm::ctl {

namespace {

constexpr std::string_view kDevice = "sys/devices/system/cmm/cmm0";
constexpr std::string_view kParameters = "sys/module/cmm/parameters";

// Splits "a/b/c" (leading '/' ignored) into its parts.
std::vector<std::string_view> Parts(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (!part.empty()) out.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

KernelTree::KernelTree(const std::vector<FileEntry>& files) {
  Dir(kDevice);
  Dir(kParameters);
  for (const auto& f : files) {
    TreeNode& dir = Dir(f.group == "device" ? kDevice : kParameters);
    auto node = std::make_unique<TreeNode>();
    node->dir = false;
    node->file = TreeFile{"read", f.group, f.name, f.mode, true};
    dir.children[f.name] = std::move(node);
  }
  for (const auto& [dir, name, op] : {std::tuple{"proc/ppc64", "lparcfg", "lparcfg"},
                                      std::tuple{"proc", "meminfo", "meminfo"}}) {
    auto node = std::make_unique<TreeNode>();
    node->dir = false;
    node->file = TreeFile{op, "", name, 0444, false};
    Dir(dir).children[name] = std::move(node);
  }
}

TreeNode& KernelTree::Dir(std::string_view path) {
  TreeNode* at = &root_;
  for (const auto part : Parts(path)) {
    auto& child = at->children[std::string(part)];
    if (!child) child = std::make_unique<TreeNode>();
    at = child.get();
  }
  return *at;
}

const TreeNode* KernelTree::Find(std::string_view path) const {
  const TreeNode* at = &root_;
  for (const auto part : Parts(path)) {
    if (!at->dir) return nullptr;
    const auto it = at->children.find(std::string(part));
    if (it == at->children.end()) return nullptr;
    at = it->second.get();
  }
  return at;
}

}  // namespace cmm::ctl
