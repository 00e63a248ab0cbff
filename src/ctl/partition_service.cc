#include "ctl/partition_service.h"

#include "core/json_fields.h"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "core/control_files.h"
#include "core/lparcfg.h"

namespace cmm::ctl {

namespace {

const char* GroupName(FileGroup g) { return g == FileGroup::kDevice ? "device" : "parameters"; }

PartitionStatus Status(guest::Partition& p, const BootRecord& boot) {
  Controller& c = p.controller();
  const ControllerSnapshot s = c.Snapshot();
  PartitionStatus out;
  out.workloads = p.workload_stats();
  // One pass over the page frames: per block, summed for the totals.
  for (uint64_t b = 0; b < p.blocks_total(); ++b) {
    const guest::BlockState state = p.memory().block_state(b);
    const guest::FrameCounts f = p.memory().BlockCounts(b);
    out.movable_pages += f.movable;
    out.unmovable_pages += f.unmovable;
    out.balloon_pages += f.balloon;
    out.blocks.push_back({b,
                          state == guest::BlockState::kOffline  ? "offline"
                          : state == guest::BlockState::kOnline ? "online"
                                                                : "isolated",
                          p.memory().ZoneOfBlock(b) == Zone::kNormal ? "Normal" : "Movable", f.free + f.isolated_free,
                          f.movable, f.unmovable, f.balloon});
  }
  out.name = p.name();
  out.pid = getpid();
  out.simulate = s.simulate;
  out.page_size = c.geometry().size();
  out.cmo_page_size = c.cmo_page_size();
  out.ram_bytes = p.ram().size();
  out.backing_bytes = p.ram().BackingBytes();
  out.totalram_pages = s.totalram.value();
  out.loaned_pages = s.loaned.value();
  out.loaned_target_pages = s.loaned_target.value();
  out.oom_freed_pages = s.oom_freed.value();
  out.free_pages = p.memory().FreePages();
  out.disabled = s.disabled;
  out.polling = c.thread_running();
  out.delay_s = c.params().delay.load();
  out.hotplug_in_progress = s.hotplug_held;
  out.integrity_errors = p.memory().integrity_errors();
  out.last_integrity_error = p.memory().last_integrity_error();
  out.cache_pages = p.cache().pages();
  out.oom_events = p.memory().oom_events();
  out.oom_give_backs = p.memory().oom_give_backs();
  out.block_bytes = AsUnsigned(p.block_bytes());
  out.blocks_online = p.blocks_online();
  out.blocks_total = p.blocks_total();
  out.boot = boot.number;
  out.restart_returned_pages = boot.restart_returned_pages;
  return out;
}

// The guest's /proc/meminfo: the usable total after the balloon
// (totalram), what is free, what the page cache holds.
std::string Meminfo(guest::Partition& p) {
  const uint64_t kb = p.controller().geometry().size() / 1024;
  const uint64_t total = p.controller().Snapshot().totalram.value() * kb;
  const uint64_t free = p.memory().FreePages() * kb;
  const uint64_t cached = p.cache().pages() * kb;
  std::string out;
  auto line = [&out](std::string_view key, uint64_t v) { out += fmt::format("{:<16}{:>8} kB\n", fmt::format("{}:", key), v); };
  line("MemTotal", total);
  line("MemFree", free);
  line("MemAvailable", std::min(total, free + cached));
  line("Buffers", 0);
  line("Cached", cached);
  line("SwapCached", 0);
  line("SwapTotal", 0);
  line("SwapFree", 0);
  return out;
}

nlohmann::json Files(ControlFiles& files) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : files.List()) {
    list.push_back({{"name", f.name}, {"group", GroupName(f.group)}, {"mode", f.mode}});
  }
  return {{"ok", true}, {"files", list}};
}

// Checks that `file` exists in `group`, saying where it is if it is in the other one.
tl::expected<void, nlohmann::json> Locate(ControlFiles& files, const std::string& name, const std::string& group,
                                          const std::string& file) {
  if (group != "device" && group != "parameters") {
    return tl::unexpected(ErrorReply(EINVAL, fmt::format("unknown group \"{}\"", group)));
  }
  for (const auto& f : files.List()) {
    if (f.name != file) continue;
    if (GroupName(f.group) == group) return {};
    const bool is_param = f.group == FileGroup::kParameters;
    return tl::unexpected(ErrorReply(
        ENOENT, fmt::format("{} is a {}, not a {}; use `cmm {} {} {}{}`", file, is_param ? "parameter" : "device attribute",
                            is_param ? "device attribute" : "parameter", is_param ? "param" : "set", name, file,
                            is_param ? "=VALUE" : " VALUE")));
  }
  return tl::unexpected(ErrorReply(ENOENT, fmt::format("there is no {} named {}", group == "device" ? "attribute" : "parameter", file)));
}

std::string Explain(int err, const std::string& file) {
  switch (err) {
    case EACCES: return fmt::format("{} is read-only", file);
    case EPERM: return fmt::format("writing {} needs administrator rights (uid 0)", file);
    case EBADMSG: return fmt::format("only 0 may be written to {}, to reset it", file);
    case EINVAL: return fmt::format("{} does not accept that value", file);
    case ERANGE: return fmt::format("the number is too large for {}", file);
    default: return fmt::format("write to {} failed", file);
  }
}

}  // namespace

nlohmann::json HandlePartitionRequest(guest::Partition& p, const nlohmann::json& request, const Peer& peer,
                                      const BootRecord& boot) {
  const std::string op = request.value("op", "");
  if (op == "status") {
    nlohmann::json reply = Status(p, boot);
    reply["ok"] = true;
    return reply;
  }
  if (op == "meminfo") return {{"ok", true}, {"text", Meminfo(p)}};
  if (op == "lparcfg") {
    std::optional<papr::MppData> mpp;
    std::optional<CmoView> cmo;
    if (guest::HvClient* hv = p.hv(); hv != nullptr) {
      papr::MppData m;
      if (hv->GetMpp(m) == papr::kSuccess) mpp = m;
      cmo = CmoView{.page_size = hv->CmoPageSize()};
    }
    return {{"ok", true}, {"text", FormatLparcfg(mpp, cmo)}};
  }
  if (op == "mem_add") {
    if (!request.contains("bytes") || !request["bytes"].is_number_unsigned()) {
      return ErrorReply(EINVAL, "mem_add needs an unsigned \"bytes\"");
    }
    if (!peer.admin()) return ErrorReply(EPERM, "adding memory needs administrator rights (uid 0)");
    const auto added = p.HotAdd(FromUnsigned<Bytes>(request["bytes"].get<uint64_t>()));
    if (!added) return ErrorReply(added.error());
    return {{"ok", true}, {"blocks", *added}, {"blocks_online", p.blocks_online()}};
  }
  if (op == "mem_remove") {
    const bool by_block = request.contains("block") && request["block"].is_number_unsigned();
    const bool by_bytes = request.contains("bytes") && request["bytes"].is_number_unsigned();
    if (by_block == by_bytes) return ErrorReply(EINVAL, "mem_remove needs an unsigned \"block\" or \"bytes\"");
    if (!peer.admin()) return ErrorReply(EPERM, "removing memory needs administrator rights (uid 0)");
    const auto removed = by_block ? p.HotRemove(request["block"].get<uint64_t>())
                                  : p.HotRemoveBytes(FromUnsigned<Bytes>(request["bytes"].get<uint64_t>()));
    if (!removed) return ErrorReply(removed.error());
    return {{"ok", true},
            {"blocks", removed->blocks},
            {"movable_migrated", removed->movable_migrated},
            {"balloon_migrated", removed->balloon_migrated},
            {"bytes_released", AsUnsigned(removed->bytes_released)},
            {"blocks_online", p.blocks_online()}};
  }
  ControlFiles* files = p.kernel().files();
  if (files == nullptr) return ErrorReply(ENODEV, "the CMM driver is not running in this partition");
  if (op == "files") return Files(*files);
  if (op == "read" || op == "write") {
    if (!request.contains("file") || !request["file"].is_string() || !request.contains("group") ||
        !request["group"].is_string()) {
      return ErrorReply(EINVAL, fmt::format("{} needs string fields \"group\" and \"file\"", op));
    }
    const std::string file = request["file"];
    if (auto where = Locate(*files, p.name(), request["group"], file); !where) return where.error();
    if (op == "read") {
      const auto text = files->Read(file);
      if (!text) return ErrorReply(text.error(), fmt::format("cannot read {}", file));
      return {{"ok", true}, {"text", *text}};
    }
    if (!request.contains("text") || !request["text"].is_string()) {
      return ErrorReply(EINVAL, "write needs a string field \"text\"");
    }
    const std::string text = request["text"];
    // A root client (the mounted file tree) may write on behalf of an
    // unprivileged caller: never more rights than the peer has.
    const bool admin = peer.admin() && !BoolField(request, "unprivileged").value_or(false);
    const auto n = files->Write(file, text, Writer{admin});
    if (!n) return ErrorReply(n.error(), Explain(n.error(), file));
    return {{"ok", true}, {"written", *n}};
  }
  return ErrorReply(EINVAL, fmt::format("unknown request \"{}\"", op));
}

}  // namespace cmm::ctl
