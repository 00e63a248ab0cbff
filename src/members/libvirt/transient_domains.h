// Domains made for a while through libvirt (virDomainCreateXML: transient,
// so nothing of them is left once destroyed), each destroyed when this
// goes. `cmm demo --libvirt` runs its guests so; it touches no other domain.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"

struct _virConnect;

namespace cmm::hv {

class TransientDomains {
 public:
  // kUnavailable, saying how to start libvirtd, when nothing answers at `uri`.
  static Result<TransientDomains> Connect(const std::string& uri);
  TransientDomains(TransientDomains&& other) noexcept;
  TransientDomains& operator=(TransientDomains&&) = delete;
  ~TransientDomains();  // destroys every domain it created that still runs

  // Starts the domain `xml` describes, named `name`; kRefused with libvirt's reason.
  Result<void> Create(const std::string& name, const std::string& xml);
  bool Running(const std::string& name) const;
  // Destroys one it created (a no-op for one already gone).
  void Destroy(const std::string& name);
  // Whether libvirt still lists a domain of that name.
  bool Listed(const std::string& name) const;

 private:
  explicit TransientDomains(_virConnect* conn) : conn_(conn) {}
  _virConnect* conn_ = nullptr;
  std::vector<std::string> created_;
};

}  // namespace cmm::hv
