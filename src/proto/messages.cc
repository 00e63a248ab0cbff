#include "proto/messages.h"

#include <bit>
#include <cstring>
#include <span>
#include <type_traits>

#include <fmt/format.h>

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

template <class W>
void Put(W& w, const Register& m) {
  w.Str(m.name);
  w.U64(m.page_size);
  w.U64(m.ram_bytes);
  w.U8(m.weight);
  w.U64(m.min_bytes);
  w.U64(m.max_bytes);
  w.U8(m.want_batch ? 1 : 0);
}
template <class W>
void Put(W& w, const Registered& m) {
  w.U64(m.cmo_page_size);
  w.U32(m.caps);
  w.U32(m.max_batch);
}
template <class W>
void Put(W& w, const GetMpp& m) {
  const Stats& s = m.stats;
  for (uint64_t v : {s.free_bytes, s.used_bytes, s.cache_bytes, s.loaned_bytes, s.oom_events, s.time_ns,
                     s.oom_freed_bytes}) {
    w.U64(v);
  }
}
template <class W>
void Put(W& w, const Mpp& m) {
  const papr::MppData& d = m.data;
  w.I64(m.rc);
  w.I64(d.entitled_mem);
  w.I64(d.mapped_entitled_mem);
  w.U16(d.group_num);
  w.U16(d.pool_num);
  w.U8(d.mem_weight);
  w.U8(d.unallocated_mem_weight);
  w.I64(d.unallocated_entitlement);
  w.I64(d.pool_size);
  w.I64(d.loan_request);
  w.I64(d.backing_mem);
}
template <class W>
void Put(W& w, const PageInit& m) {
  w.U64(m.flags);
  w.U64(m.address);
}
template <class W>
void Put(W& w, const PageInitRc& m) { w.I64(m.rc); }
template <class W>
void Put(W& w, const PageInitBatch& m) {
  w.U64(m.flags);
  w.U32(static_cast<uint32_t>(m.addresses.size()));
  for (uint64_t a : m.addresses) w.U64(a);
}
template <class W>
void Put(W& w, const PageInitBatchRc& m) {
  w.U32(m.done);
  w.I64(m.rc);
}
template <class W>
void Put(W& w, const Error& m) {
  w.U32(m.code);
  w.Str(m.message.substr(0, 1024));
}

using Result = tl::expected<Message, std::string>;

Result Get(Reader& r, Register) {
  Register m;
  m.name = r.Str(kMaxName);
  m.page_size = r.U64();
  m.ram_bytes = r.U64();
  m.weight = r.U8();
  m.min_bytes = r.U64();
  m.max_bytes = r.U64();
  const uint8_t batch = r.U8();
  if (!r.ok()) return tl::unexpected(std::string("register: truncated"));
  if (!ValidName(m.name)) return tl::unexpected(fmt::format("register: partition name \"{}\" is not valid", m.name));
  if (m.page_size < 1024 || (m.page_size & (m.page_size - 1)) != 0) {
    return tl::unexpected(fmt::format("register: page size {} is not a power of two of at least 1 KiB", m.page_size));
  }
  if (m.ram_bytes == 0 || m.ram_bytes % m.page_size != 0) {
    return tl::unexpected(fmt::format("register: RAM size {} is not whole pages", m.ram_bytes));
  }
  if (m.min_bytes > m.ram_bytes || m.max_bytes > m.ram_bytes) {
    return tl::unexpected(std::string("register: min and max must not exceed the RAM size"));
  }
  if (batch > 1) return tl::unexpected(std::string("register: batch flag must be 0 or 1"));
  m.want_batch = batch == 1;
  return m;
}
Result Get(Reader& r, Registered) {
  Registered m;
  m.cmo_page_size = r.U64();
  m.caps = r.U32();
  m.max_batch = r.U32();
  if (!r.ok()) return tl::unexpected(std::string("registered: truncated"));
  if (m.cmo_page_size < 1024 || (m.cmo_page_size & (m.cmo_page_size - 1)) != 0) {
    return tl::unexpected(fmt::format("registered: CMO page size {} is not a power of two", m.cmo_page_size));
  }
  if (m.max_batch > kMaxBatch) return tl::unexpected(std::string("registered: batch limit too large"));
  return m;
}
Result Get(Reader& r, GetMpp) {
  GetMpp m;
  Stats& s = m.stats;
  for (uint64_t* v : {&s.free_bytes, &s.used_bytes, &s.cache_bytes, &s.loaned_bytes, &s.oom_events, &s.time_ns,
                      &s.oom_freed_bytes}) {
    *v = r.U64();
  }
  if (!r.ok()) return tl::unexpected(std::string("get_mpp: truncated"));
  return m;
}
Result Get(Reader& r, Mpp) {
  Mpp m;
  papr::MppData& d = m.data;
  m.rc = r.I64();
  d.entitled_mem = r.I64();
  d.mapped_entitled_mem = r.I64();
  d.group_num = r.U16();
  d.pool_num = r.U16();
  d.mem_weight = r.U8();
  d.unallocated_mem_weight = r.U8();
  d.unallocated_entitlement = r.I64();
  d.pool_size = r.I64();
  d.loan_request = r.I64();
  d.backing_mem = r.I64();
  if (!r.ok()) return tl::unexpected(std::string("mpp: truncated"));
  return m;
}
Result Get(Reader& r, PageInit) {
  PageInit m;
  m.flags = r.U64();
  m.address = r.U64();
  if (!r.ok()) return tl::unexpected(std::string("page_init: truncated"));
  return m;
}
Result Get(Reader& r, PageInitRc) {
  PageInitRc m;
  m.rc = r.I64();
  if (!r.ok()) return tl::unexpected(std::string("page_init_rc: truncated"));
  return m;
}
Result Get(Reader& r, PageInitBatch) {
  PageInitBatch m;
  m.flags = r.U64();
  const uint32_t n = r.U32();
  if (!r.ok()) return tl::unexpected(std::string("page_init_batch: truncated"));
  if (n == 0 || n > kMaxBatch) return tl::unexpected(fmt::format("page_init_batch: {} pages (1-{} allowed)", n, kMaxBatch));
  m.addresses.resize(n);
  r.U64s(m.addresses);
  if (!r.ok()) return tl::unexpected(std::string("page_init_batch: truncated"));
  return m;
}
Result Get(Reader& r, PageInitBatchRc) {
  PageInitBatchRc m;
  m.done = r.U32();
  m.rc = r.I64();
  if (!r.ok()) return tl::unexpected(std::string("page_init_batch_rc: truncated"));
  if (m.done > kMaxBatch) return tl::unexpected(std::string("page_init_batch_rc: count too large"));
  return m;
}
Result Get(Reader& r, Error) {
  Error m;
  m.code = r.U32();
  m.message = r.Str(1024);
  if (!r.ok()) return tl::unexpected(std::string("error: truncated"));
  return m;
}

template <size_t I = 0>
Result DecodeAs(size_t index, Reader& r) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (index == I) return Get(r, std::variant_alternative_t<I, Message>{});
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
