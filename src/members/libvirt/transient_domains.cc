#include "members/libvirt/transient_domains.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>

#include <fmt/format.h>

namespace cmm::hv {

namespace {

std::string LastError() {
  const char* m = virGetLastErrorMessage();
  return m != nullptr ? m : "libvirt said no";
}

void Quiet(void*, virErrorPtr) {}  // errors are read where they happen, not printed by libvirt

}  // namespace

Result<TransientDomains> TransientDomains::Connect(const std::string& uri) {
  virSetErrorFunc(nullptr, Quiet);
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr) {
    return Fail(ErrorCode::kUnavailable,
                fmt::format("libvirt does not answer at {} ({}); start libvirtd (systemctl start libvirtd, or "
                            "libvirtd -d)",
                            uri, LastError()));
  }
  return TransientDomains(conn);
}

TransientDomains::TransientDomains(TransientDomains&& other) noexcept
    : conn_(other.conn_), created_(std::move(other.created_)) {
  other.conn_ = nullptr;
  other.created_.clear();
}

TransientDomains::~TransientDomains() {
  if (conn_ == nullptr) return;
  for (const std::string& name : std::vector<std::string>(created_)) Destroy(name);
  virConnectClose(conn_);
}

Result<void> TransientDomains::Create(const std::string& name, const std::string& xml) {
  virDomainPtr dom = virDomainCreateXML(conn_, xml.c_str(), 0);
  if (dom == nullptr) return Fail(ErrorCode::kRefused, fmt::format("domain {}: {}", name, LastError()));
  virDomainFree(dom);
  created_.push_back(name);
  return {};
}

bool TransientDomains::Running(const std::string& name) const {
  virDomainPtr dom = virDomainLookupByName(conn_, name.c_str());
  if (dom == nullptr) return false;
  const bool running = virDomainIsActive(dom) == 1;
  virDomainFree(dom);
  return running;
}

bool TransientDomains::Listed(const std::string& name) const {
  virDomainPtr dom = virDomainLookupByName(conn_, name.c_str());
  if (dom == nullptr) return false;
  virDomainFree(dom);
  return true;
}

void TransientDomains::Destroy(const std::string& name) {
  const auto it = std::find(created_.begin(), created_.end(), name);
  if (it == created_.end()) return;  // never one of ours
  created_.erase(it);
  if (virDomainPtr dom = virDomainLookupByName(conn_, name.c_str())) {
    (void)virDomainDestroy(dom);
    virDomainFree(dom);
  }
}

}  // namespace cmm::hv
