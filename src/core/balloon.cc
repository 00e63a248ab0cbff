#include "core/balloon.h"

#include <algorithm>

namespace cmm {

void Balloon::Enqueue(Pfn p) {
  MutexLock lock(mu_);
  pages_.Set(p.value);
}

std::optional<Pfn> Balloon::Dequeue() {
  MutexLock lock(mu_);
  const auto last = pages_.FindLast();
  if (!last) return std::nullopt;
  pages_.Clear(*last);
  return Pfn{*last};
}

bool Balloon::Isolate(Pfn p) {
  MutexLock lock(mu_);
  if (p.value >= pages_.size() || !pages_.Clear(p.value)) return false;
  isolated_.push_back(p);
  return true;
}

void Balloon::Putback(Pfn p) {
  MutexLock lock(mu_);
  const auto it = std::find(isolated_.begin(), isolated_.end(), p);
  if (it == isolated_.end()) return;
  isolated_.erase(it);
  pages_.Set(p.value);
}

bool Balloon::Replace(Pfn old, Pfn fresh) {
  MutexLock lock(mu_);
  const auto it = std::find(isolated_.begin(), isolated_.end(), old);
  if (it == isolated_.end()) return false;
  pages_.Set(fresh.value);
  isolated_.erase(it);
  return true;
}

uint64_t Balloon::listed() const {
  MutexLock lock(mu_);
  return pages_.count();
}

uint64_t Balloon::isolated() const {
  MutexLock lock(mu_);
  return isolated_.size();
}

bool Balloon::IsolatedLocked(Pfn p) const {
  return std::find(isolated_.begin(), isolated_.end(), p) != isolated_.end();
}

bool Balloon::Contains(Pfn p) const {
  MutexLock lock(mu_);
  return (p.value < pages_.size() && pages_.Test(p.value)) || IsolatedLocked(p);
}

bool Balloon::IsIsolated(Pfn p) const {
  MutexLock lock(mu_);
  return IsolatedLocked(p);
}

std::vector<Pfn> Balloon::Snapshot() const {
  MutexLock lock(mu_);
  std::vector<Pfn> out;
  out.reserve(pages_.count() + isolated_.size());
  for (auto i = pages_.FindFirst(0); i; i = pages_.FindFirst(*i + 1)) out.push_back(Pfn{*i});
  out.insert(out.end(), isolated_.begin(), isolated_.end());
  return out;
}

std::vector<Pfn> Balloon::ListedIn(uint64_t first, uint64_t count) const {
  MutexLock lock(mu_);
  std::vector<Pfn> out;
  const uint64_t end = std::min(first + count, pages_.size());
  for (auto i = pages_.FindFirst(first); i && *i < end; i = pages_.FindFirst(*i + 1)) out.push_back(Pfn{*i});
  return out;
}

uint64_t Balloon::BookkeepingBytes() const {
  MutexLock lock(mu_);
  return pages_.MemoryBytes() + isolated_.capacity() * sizeof(Pfn);
}

}  // namespace cmm
