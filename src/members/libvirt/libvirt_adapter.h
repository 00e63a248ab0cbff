// The pool's adapter for libvirt's domains (`cmm hv --libvirt URI`): one
// connection through libvirt's C API, its event loop on a thread of its
// own, and a follower thread that reads every domain each period and pushes
// their targets. Every running domain with a virtio memballoon is a member
// of kind `domain`; lifecycle events (not polling) make domains that start
// join at once, and those shut off, destroyed, crashed or migrated away
// leave at once; a paused domain is held as it is until it runs again. A
// domain without a balloon is skipped and said once.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "core/error.h"
#include "core/mutex.h"
#include "members/libvirt/domain_member.h"
#include "pool/pool.h"

namespace cmm::hv {

struct LibvirtOptions {
  std::string uri = "qemu:///system";
  std::chrono::milliseconds period{1000};
  // Only the domains whose terms in <metadata> say manage="yes".
  bool tagged_only = false;
};

class LibvirtAdapter {
 public:
  // Connects and adopts the running domains. kUnavailable when libvirt
  // does not answer at the URI.
  static Result<std::unique_ptr<LibvirtAdapter>> Start(Pool& pool, LibvirtOptions options);
  ~LibvirtAdapter();  // the domains leave the pool; they keep running

  // Domains seen without a balloon, by name.
  std::set<std::string> skipped() const;

  struct Connection;  // libvirt's handles, kept out of this header
  enum class Happened : uint8_t { kRunning, kGone, kPaused, kResumed, kBalloon, kConnectionLost, kTerms };
  struct Event {
    std::string name;
    Happened what;
    uint64_t actual_bytes = 0;  // kBalloon
    MemberSettings terms{};     // kTerms
    MemberClock::time_point posted = MemberClock::now();
  };
  // From libvirt's event loop: queued for the follower thread.
  void Post(Event e);
  // A member's terms as they stand now (the pool's on_terms): for one of
  // its domains, written into the domain's <metadata> (live, and in its
  // persistent definition when it has one) off the caller's thread, when
  // they differ from what the domain says.
  void TermsChanged(const std::string& name, const MemberSettings& terms);

 private:
  LibvirtAdapter(Pool& pool, LibvirtOptions options);
  void Follow();
  // Opens the connection, registers for events and lists the running
  // domains (as kRunning events); kUnavailable when libvirt does not answer.
  Result<void> Connect();
  // Lost: every member is held as it is; tried again with back-off, and on
  // success each domain still running is bound to the new connection, those
  // gone leave, new ones join.
  void Disconnect();
  void Reconnect(MemberClock::time_point now);
  void Adopt(const std::string& name);
  void Leave(const std::string& name);
  void WriteTerms(const std::string& name, const MemberSettings& terms);

  Pool& pool_;
  const LibvirtOptions options_;
  std::unique_ptr<Connection> conn_;
  std::thread events_thread_;
  std::thread follow_thread_;

  mutable Mutex mu_;  // guards everything below
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool push_ GUARDED_BY(mu_) = false;  // a member has a new target
  std::deque<Event> events_ GUARDED_BY(mu_);
  std::set<std::string> skipped_ GUARDED_BY(mu_);
  // The follower thread's own (then the destructor's, once it is joined):
  // libvirt is never called with mu_ held.
  std::map<std::string, std::shared_ptr<DomainMember>> members_;
  bool connected_ = false;
  std::set<std::string> rebinding_;  // members to bind to a new connection
  std::map<std::string, MemberSettings> said_;  // each member's terms as its <metadata> says them
  std::chrono::milliseconds backoff_{250};
  MemberClock::time_point reconnect_at_{};
};

}  // namespace cmm::hv
