// The pool policy: from each member's terms, its confirmed loan, what it
// was last granted and its last stats, the loan target of each. Pure: no
// clock, no I/O.
//
// What a member may back is its RAM less the loan it is bound to: its
// confirmed loan, or less where it has been granted memory back and not yet
// taken it (its entitlement). The policy keeps the sum of entitlements
// within the pool, make before break: memory is granted back only out of
// loans already confirmed, never out of loans merely asked for.
//
// Each round, members short of memory (OOM events, swap-ins, or free + cache
// below `low_free` of RAM) want back what they have loaned; the pool asks it
// of the others' idle memory (free + cache above a `headroom` share of their
// RAM), in proportion to their inverse weight (256 - weight), first the
// taxed share of idle memory (an idle-memory tax, default 75%, as in
// Waldspurger's ESX balloon), then the rest. A member whose use keeps
// growing wants what that growth will take before the next answer, beyond
// the idle memory it has above its headroom, asked the same way before it is
// short; one whose use rose at its last reading (it may be a burst starting)
// is not asked for its idle memory. If the pool itself is over (it shrank, a
// member took memory back on its own), the rest is asked of any memory above
// the members' floors. Room left over goes first to members with less idle
// memory than it takes to get back to their recent peak (even out of the
// reserve for give-backs: the burst would take it), then to the others in
// proportion to weight + 1. A frozen member (not following its target) is
// asked only what is above its max and given nothing back.
//
// When the floors alone (each responsive member's min, each frozen
// member's entitlement) exceed the pool, it cannot be met: every member is
// held at its floor, nothing is handed back, and the shortfall is reported.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cmm::hv {

struct PolicyInput {
  uint64_t ram_bytes = 0;
  uint64_t min_bytes = 0;  // never ask it to go below this much usable memory
  uint64_t max_bytes = 0;  // 0: the RAM size; it always loans what is above
  uint8_t weight = 0;
  uint64_t loaned_bytes = 0;   // confirmed
  // Its last target against its confirmed loan: this much lower (granted
  // back, not yet taken) or higher (asked, not yet loaned).
  uint64_t granted_bytes = 0;
  uint64_t asked_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t cache_bytes = 0;
  uint64_t backing_bytes = 0;  // host memory behind it now (the peers' host use)
  uint64_t new_oom_events = 0;  // since the last decision
  // What it used at its recent peak (pool/peak_memory.h); 0: none known.
  // Room left over goes first to members with less idle memory than it
  // takes to get back there with low_free to spare.
  uint64_t peak_bytes = 0;
  // How much more it is expected to use before the pool can next answer:
  // the growth of its use kept up over its last readings, over
  // `growth_lead_s`. What of it (with its headroom) it has not idle is
  // asked of the others before it is short, as for a member short of
  // memory; its idle memory is not asked.
  uint64_t growth_bytes = 0;
  // Its use rose at its last reading (one step, not yet kept up): none of
  // its idle memory is asked while it may be the start of a burst; nor is
  // the room asked of the others ahead of it, as for growth kept up.
  bool rising = false;
  // It swapped memory back in since its last reading: short of memory,
  // whatever its free memory and cache show (they may be what it cannot
  // give up), as with an OOM event.
  bool swapping = false;
  // Not following its target (no balloon driver, a stuck guest): none of
  // its memory counts as idle and none is handed back to it; only what is
  // above its max is still asked of it.
  bool frozen = false;
};

struct PolicyConfig {
  uint64_t pool_bytes = 0;
  double idle_tax = 0.75;
  double low_free = 0.05;  // below this share of RAM idle, a member needs memory
  // The share of its RAM a member keeps idle before any of its idle memory
  // is asked for: where its next burst lands. A short member is given back
  // up to this first. `cmm sim --sweep` shows what it trades: 6% is on
  // its frontier (README, "Why the defaults are what they are").
  double headroom = 0.06;
  // How slowly a member's memory of its peak falls back to its use (the
  // time constant of its decay), in seconds; 0: no memory of peaks.
  double peak_window_s = 600;
  // How far ahead a member's growing use is followed, in seconds: about
  // the time from a stats reading to the member acting on the target that
  // answers it (its next reading, a round, its next call). 0: not at all.
  double growth_lead_s = 2;
  // Free memory a member that joins in use keeps above its use, as a share
  // of it (at least its headroom).
  double buffer = 0.25;
  uint64_t granule = 1 << 20;  // targets move in whole multiples of this
  // Kept out of what is handed out (while the floors allow), so that a
  // guest taking memory back on OOM lands in it, not over the pool.
  uint64_t giveback_reserve_bytes = 0;
  double giveback_reserve_max = 0.10;  // the reserve is at most this share of the pool
  // A member's target stays as it was when the new one is this share of
  // its RAM (and at least 4 granules) away or less, unless it is short of
  // memory or the pool needs the change.
  double settle = 1.0 / 64;
};

struct PolicyDecision {
  std::vector<uint64_t> targets;  // loan target of each member, bytes
  uint64_t floors_bytes = 0;      // what the members need at least
  uint64_t shortfall_bytes = 0;   // floors above the pool; 0 when it can be met
  uint64_t giveback_reserve_bytes = 0;  // of the reserve asked for, what the floors left kept back
};

// A target within this of a member's last one stays as it was (a
// member this close to its target has reached it).
double SettleBand(const PolicyConfig& config, double ram);

PolicyDecision Decide(const PolicyConfig& config, std::span<const PolicyInput> members);

// Its last target: its confirmed loan less what it was granted back, plus
// what it was asked and has not yet loaned.
inline uint64_t LastTarget(const PolicyInput& m) { return m.loaned_bytes - m.granted_bytes + m.asked_bytes; }

// What a member may back under a target: its RAM less the loan it is bound
// to. `granted` as in PolicyInput.
inline uint64_t Entitlement(uint64_t ram, uint64_t loaned, uint64_t granted) {
  return ram - (loaned - granted);
}

}  // namespace cmm::hv
