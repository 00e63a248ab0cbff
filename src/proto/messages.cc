#include "proto/messages.h"

#include <bit>
#include <concepts>
#include <iterator>
#include <cstring>
#include <span>
#include <type_traits>

#include <fmt/format.h>

#include "core/units.h"

namespace cmm::proto {

namespace {

// The type byte is the variant index + 1: new messages go at the end so
// old numbers keep their meaning.

template <class T>
T ByteSwap(T v) {
  T out = 0;
  for (size_t i = 0; i < sizeof(T); ++i) out = static_cast<T>((out << 8) | ((v >> (8 * i)) & 0xff));
  return out;
}

// Encoding runs twice over a message: a Sizer adds up its bytes, then a
// Writer stores them into a buffer of exactly that size, one store per
// field (a full batch is 32 KiB of addresses). Little-endian on the wire.
class Sizer {
 public:
  void U8(uint8_t) { n_ += 1; }
  void U16(uint16_t) { n_ += 2; }
  void U32(uint32_t) { n_ += 4; }
  void U64(uint64_t) { n_ += 8; }
  void I64(int64_t) { n_ += 8; }
  void Str(const std::string& s) { n_ += 2 + s.size(); }
  size_t size() const { return n_; }

 private:
  size_t n_ = 0;
};

class Writer {
 public:
  explicit Writer(std::span<uint8_t> out) : out_(out) {}
  void U8(uint8_t v) { Raw(v); }
  void U16(uint16_t v) { Raw(v); }
  void U32(uint32_t v) { Raw(v); }
  void U64(uint64_t v) { Raw(v); }
  void I64(int64_t v) { Raw(static_cast<uint64_t>(v)); }
  void Str(const std::string& s) {
    U16(static_cast<uint16_t>(s.size()));
    std::memcpy(out_.data() + pos_, s.data(), s.size());
    pos_ += s.size();
  }

 private:
  template <class T>
  void Raw(T v) {
    static_assert(std::is_unsigned_v<T>);
    if constexpr (std::endian::native != std::endian::little) v = ByteSwap(v);
    std::memcpy(out_.data() + pos_, &v, sizeof(T));
    pos_ += sizeof(T);
  }
  std::span<uint8_t> out_;
  size_t pos_ = 0;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  size_t left() const { return in_.size() - pos_; }
  uint8_t U8() { return Raw<uint8_t>(); }
  uint16_t U16() { return Raw<uint16_t>(); }
  uint32_t U32() { return Raw<uint32_t>(); }
  uint64_t U64() { return Raw<uint64_t>(); }
  int64_t I64() { return static_cast<int64_t>(Raw<uint64_t>()); }
  std::string Str(size_t max) {
    const uint16_t n = U16();
    if (!ok_ || n > max || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // Many U64s at once: one bounds check, one copy.
  void U64s(std::span<uint64_t> out) {
    const size_t n = out.size() * sizeof(uint64_t);
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return;
    }
    std::memcpy(out.data(), in_.data() + pos_, n);
    pos_ += n;
    if constexpr (std::endian::native != std::endian::little) {
      for (auto& v : out) v = ByteSwap(v);
    }
  }

 private:
  template <class T>
  T Raw() {
    if (!ok_ || in_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return 0;
    }
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    if constexpr (std::endian::native != std::endian::little) v = ByteSwap(v);
    return v;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// ---- each message's fields, described once ----------------------------
// Fields(v, m) names every field of m in wire order. With an Out visitor
// (over the Sizer or the Writer) it encodes; with In (over the Reader) it
// decodes into m. Checks beyond the wire's shape are in Check(m).

template <class M, class T>
concept Of = std::same_as<std::remove_const_t<M>, T>;

template <class W>
struct Out {
  W& w;
  void U8(uint8_t v) { w.U8(v); }
  void U16(uint16_t v) { w.U16(v); }
  void U32(uint32_t v) { w.U32(v); }
  void U64(uint64_t v) { w.U64(v); }
  void I64(int64_t v) { w.I64(v); }
  void Flag(bool v) { w.U8(v ? 1 : 0); }
  void Str(const std::string& v, size_t max) { w.Str(v.size() > max ? v.substr(0, max) : v); }
  // A count, then the values.
  void U64s(const std::vector<uint64_t>& v, size_t) {
    w.U32(static_cast<uint32_t>(v.size()));
    for (const uint64_t x : v) w.U64(x);
  }
};

struct In {
  Reader& r;
  std::string stop;  // a field that made the rest unreadable: said first
  std::string late;  // a field out of range: said after the other checks
  template <class T>
  void U8(T& v) { v = static_cast<T>(r.U8()); }
  template <class T>
  void U16(T& v) { v = static_cast<T>(r.U16()); }
  template <class T>
  void U32(T& v) { v = static_cast<T>(r.U32()); }
  template <class T>
  void U64(T& v) { v = static_cast<T>(r.U64()); }
  template <class T>
  void I64(T& v) { v = static_cast<T>(r.I64()); }
  void Flag(bool& v) {
    const uint8_t x = r.U8();
    if (x > 1) late = "batch flag must be 0 or 1";
    v = x == 1;
  }
  void Str(std::string& v, size_t max) { v = r.Str(max); }
  void U64s(std::vector<uint64_t>& v, size_t max) {
    const uint32_t n = r.U32();
    if (!r.ok() || !stop.empty()) return;
    if (n == 0 || n > max) {
      stop = fmt::format("{} pages (1-{} allowed)", n, max);
      return;
    }
    v.resize(n);
    r.U64s(v);
  }
};

template <class V, Of<Register> M>
void Fields(V& v, M& m) {
  v.Str(m.name, kMaxName);
  v.U64(m.page_size);
  v.U64(m.ram_bytes);
  v.U8(m.weight);
  v.U64(m.min_bytes);
  v.U64(m.max_bytes);
  v.Flag(m.want_batch);
}
template <class V, Of<Registered> M>
void Fields(V& v, M& m) {
  v.U64(m.cmo_page_size);
  v.U32(m.caps);
  v.U32(m.max_batch);
}
template <class V, Of<GetMpp> M>
void Fields(V& v, M& m) {
  auto& s = m.stats;
  v.U64(s.free_bytes);
  v.U64(s.used_bytes);
  v.U64(s.cache_bytes);
  v.U64(s.loaned_bytes);
  v.U64(s.oom_events);
  v.U64(s.time_ns);
  v.U64(s.oom_freed_bytes);
  v.U64(s.reclaimed_bytes);
}
template <class V, Of<Mpp> M>
void Fields(V& v, M& m) {
  auto& d = m.data;
  v.I64(m.rc);
  v.I64(d.entitled_mem);
  v.I64(d.mapped_entitled_mem);
  v.U16(d.group_num);
  v.U16(d.pool_num);
  v.U8(d.mem_weight);
  v.U8(d.unallocated_mem_weight);
  v.I64(d.unallocated_entitlement);
  v.I64(d.pool_size);
  v.I64(d.loan_request);
  v.I64(d.backing_mem);
}
template <class V, Of<PageInit> M>
void Fields(V& v, M& m) {
  v.U64(m.flags);
  v.U64(m.address);
}
template <class V, Of<PageInitRc> M>
void Fields(V& v, M& m) {
  v.I64(m.rc);
}
template <class V, Of<PageInitBatch> M>
void Fields(V& v, M& m) {
  v.U64(m.flags);
  v.U64s(m.addresses, kMaxBatch);
}
template <class V, Of<PageInitBatchRc> M>
void Fields(V& v, M& m) {
  v.U32(m.done);
  v.I64(m.rc);
}
template <class V, Of<Error> M>
void Fields(V& v, M& m) {
  v.U32(m.code);
  v.Str(m.message, 1024);
}

// What the wire's shape does not say; "" when the message is sound.
std::string Check(const Register& m) {
  if (!ValidName(m.name)) return fmt::format("partition name \"{}\" is not valid", m.name);
  if (!PageGeometry::Valid(m.page_size)) {
    return fmt::format("page size {} is not a power of two of at least 1 KiB", m.page_size);
  }
  if (m.ram_bytes == 0 || m.ram_bytes % m.page_size != 0) {
    return fmt::format("RAM size {} is not whole pages", m.ram_bytes);
  }
  if (m.min_bytes > m.ram_bytes || m.max_bytes > m.ram_bytes) return "min and max must not exceed the RAM size";
  return "";
}
std::string Check(const Registered& m) {
  if (!PageGeometry::Valid(m.cmo_page_size)) {
    return fmt::format("CMO page size {} is not a power of two", m.cmo_page_size);
  }
  if (m.max_batch > kMaxBatch) return "batch limit too large";
  return "";
}
std::string Check(const PageInitBatchRc& m) { return m.done > kMaxBatch ? "count too large" : ""; }
template <class M>
std::string Check(const M&) {
  return "";
}

// The names errors use, in the variant's order.
constexpr const char* kNames[] = {"register", "registered",      "get_mpp",           "mpp",  "page_init",
                                  "page_init_rc", "page_init_batch", "page_init_batch_rc", "error"};
static_assert(std::size(kNames) == std::variant_size_v<Message>);

template <class W, class M>
void Put(W& w, const M& m) {
  Out<W> out{w};
  Fields(out, m);
}

using Result = tl::expected<Message, std::string>;

template <class M>
Result Get(Reader& r, const char* name, M m) {
  In in{r, {}, {}};
  Fields(in, m);
  if (!in.stop.empty()) return tl::unexpected(fmt::format("{}: {}", name, in.stop));
  if (!r.ok()) return tl::unexpected(fmt::format("{}: truncated", name));
  if (const std::string why = Check(m); !why.empty()) return tl::unexpected(fmt::format("{}: {}", name, why));
  if (!in.late.empty()) return tl::unexpected(fmt::format("{}: {}", name, in.late));
  return m;
}

template <size_t I = 0>
Result DecodeAs(size_t index, Reader& r) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (index == I) return Get(r, kNames[I], std::variant_alternative_t<I, Message>{});
    return DecodeAs<I + 1>(index, r);
  } else {
    return tl::unexpected(std::string("unknown message type"));
  }
}

}  // namespace

std::vector<uint8_t> Encode(const Message& m) {
  Sizer payload;
  std::visit([&](const auto& v) { Put(payload, v); }, m);
  std::vector<uint8_t> out(kHeaderBytes + payload.size());
  Writer w(out);
  w.U16(kMagic);
  w.U8(kVersion);
  w.U8(static_cast<uint8_t>(m.index() + 1));
  w.U32(static_cast<uint32_t>(payload.size()));
  std::visit([&](const auto& v) { Put(w, v); }, m);
  return out;
}

tl::expected<Message, std::string> Decode(std::span<const uint8_t> packet) {
  Reader h(packet);
  const uint16_t magic = h.U16();
  const uint8_t version = h.U8();
  const uint8_t type = h.U8();
  const uint32_t length = h.U32();
  if (!h.ok()) return tl::unexpected(fmt::format("packet of {} bytes is shorter than a header", packet.size()));
  if (magic != kMagic) return tl::unexpected(fmt::format("bad magic {:#06x}", magic));
  if (version != kVersion) return tl::unexpected(fmt::format("protocol version {} (this side speaks {})", version, kVersion));
  if (length > kMaxPayload) return tl::unexpected(fmt::format("payload of {} bytes is over the limit", length));
  if (packet.size() != kHeaderBytes + length) {
    return tl::unexpected(fmt::format("payload length {} but {} bytes follow the header", length, packet.size() - kHeaderBytes));
  }
  if (type == 0 || type > std::variant_size_v<Message>) return tl::unexpected(fmt::format("unknown message type {}", type));
  Reader r(packet.subspan(kHeaderBytes));
  auto m = DecodeAs(type - 1, r);
  if (m && r.left() != 0) return tl::unexpected(fmt::format("message type {}: {} bytes left over", type, r.left()));
  return m;
}

}  // namespace cmm::proto
