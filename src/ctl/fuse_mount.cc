#define FUSE_USE_VERSION 35
#include "ctl/fuse_mount.h"

#include "core/json_fields.h"

#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "ctl/client.h"
#include "ctl/kernel_tree.h"

namespace cmm::ctl {

namespace {

struct State {
  std::string socket;
  KernelTree tree;
  timespec mounted{};
};

State& Self() { return *static_cast<State*>(fuse_get_context()->private_data); }

// The partition's answer, or a negative errno: ENODEV when it is gone.
tl::expected<nlohmann::json, int> Ask(const nlohmann::json& request) {
  auto reply = Call(Self().socket, request);
  if (!reply) return tl::unexpected(-ENODEV);
  if (!BoolField(*reply, "ok").value_or(false)) {
    const uint64_t err = UnsignedField(*reply, "errno").value_or(EIO);
    return tl::unexpected(-static_cast<int>(err > 0 && err < 4096 ? err : EIO));
  }
  return *reply;
}

tl::expected<std::string, int> Text(const TreeFile& f) {
  nlohmann::json req = {{"op", f.op}};
  if (f.op == "read") {
    req["group"] = f.group;
    req["file"] = f.name;
  }
  auto reply = Ask(req);
  if (!reply) return tl::unexpected(reply.error());
  auto text = StringField(*reply, "text");
  if (!text) return tl::unexpected(-EIO);
  return *text;
}

int GetAttr(const char* path, struct stat* st, fuse_file_info*) {
  const TreeNode* n = Self().tree.Find(path);
  if (n == nullptr) return -ENOENT;
  std::memset(st, 0, sizeof *st);
  st->st_uid = 0;  // the kernel's files belong to root
  st->st_gid = 0;
  st->st_atim = st->st_mtim = st->st_ctim = Self().mounted;
  if (n->dir) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | n->file.mode;
    st->st_nlink = 1;
    st->st_size = n->file.sysfs ? 4096 : 0;
  }
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*, fuse_readdir_flags) {
  const TreeNode* n = Self().tree.Find(path);
  if (n == nullptr) return -ENOENT;
  if (!n->dir) return -ENOTDIR;
  fill(buf, ".", nullptr, 0, FUSE_FILL_DIR_PLUS);
  fill(buf, "..", nullptr, 0, FUSE_FILL_DIR_PLUS);
  for (const auto& [name, child] : n->children) fill(buf, name.c_str(), nullptr, 0, FUSE_FILL_DIR_PLUS);
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  const TreeNode* n = Self().tree.Find(path);
  if (n == nullptr) return -ENOENT;
  if (n->dir) return -EISDIR;
  // Each read asks the partition: sizes say nothing about the text.
  fi->direct_io = 1;
  fi->nonseekable = 0;
  return 0;
}

int Read(const char* path, char* buf, size_t size, off_t offset, fuse_file_info*) {
  const TreeNode* n = Self().tree.Find(path);
  if (n == nullptr || n->dir) return -ENOENT;
  const auto text = Text(n->file);
  if (!text) return text.error();
  if (static_cast<size_t>(offset) >= text->size()) return 0;
  const size_t len = std::min(size, text->size() - static_cast<size_t>(offset));
  std::memcpy(buf, text->data() + offset, len);
  return static_cast<int>(len);
}

int Write(const char* path, const char* buf, size_t size, off_t, fuse_file_info*) {
  const TreeNode* n = Self().tree.Find(path);
  if (n == nullptr || n->dir) return -ENOENT;
  if (n->file.op != "read") return -EACCES;  // /proc files here are read-only
  const bool unprivileged = fuse_get_context()->uid != 0;
  auto reply = Ask({{"op", "write"},
                    {"group", n->file.group},
                    {"file", n->file.name},
                    {"text", std::string(buf, size)},
                    {"unprivileged", unprivileged}});
  if (!reply) return reply.error();
  return static_cast<int>(size);
}

// `echo > file` opens with O_TRUNC: accepted for attributes, as sysfs does.
int Truncate(const char* path, off_t, fuse_file_info*) {
  const TreeNode* n = Self().tree.Find(path);
  if (n == nullptr) return -ENOENT;
  if (n->dir) return -EISDIR;
  return n->file.op == "read" ? 0 : -EACCES;
}

void* Init(fuse_conn_info*, fuse_config* cfg) {
  cfg->direct_io = 1;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  return fuse_get_context()->private_data;
}

}  // namespace

tl::expected<void, std::string> ServeKernelTree(const std::string& socket, const std::string& dir,
                                                const std::function<void()>& ready) {
  auto files = Call(socket, {{"op", "files"}});
  if (!files) return tl::unexpected(fmt::format("no partition answers at {}: {}", socket, files.error().message));
  if (!files->value("ok", false)) {
    return tl::unexpected(fmt::format("the partition cannot list its files: {}", files->value("message", "?")));
  }
  std::vector<FileEntry> entries;
  for (const auto& f : (*files)["files"]) entries.push_back({f["name"], f["group"], f["mode"]});
  State state{socket, KernelTree(entries), {}};
  clock_gettime(CLOCK_REALTIME, &state.mounted);

  fuse_operations ops{};
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.truncate = Truncate;
  ops.init = Init;

  // default_permissions: the kernel checks the modes, as it does for the
  // real files; allow_other (root only) lets every user look.
  std::vector<std::string> args = {"cmm-mount", "-o", "default_permissions,fsname=cmm"};
  if (geteuid() == 0) args.back() += ",allow_other";
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse* f = fuse_new(&fargs, &ops, sizeof ops, &state);
  fuse_opt_free_args(&fargs);  // fuse_new may have copied them
  if (f == nullptr) return tl::unexpected(std::string("fuse_new failed"));
  if (fuse_mount(f, dir.c_str()) != 0) {
    fuse_destroy(f);
    return tl::unexpected(fmt::format("cannot mount at {} (is /dev/fuse there, and may this user mount?)", dir));
  }
  fuse_session* se = fuse_get_session(f);
  fuse_set_signal_handlers(se);
  if (ready) ready();
  const int rc = fuse_loop(f);
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  fuse_destroy(f);
  if (rc < 0) return tl::unexpected(fmt::format("serving {}: {}", dir, std::strerror(-rc)));
  return {};
}

}  // namespace cmm::ctl
