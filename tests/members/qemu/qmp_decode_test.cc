// Typed, non-throwing decoding of everything QEMU sends (issue: "nothing a
// guest's QEMU says can stop the hypervisor"): wrong types in every field
// the adapter reads, invalid UTF-8, numbers past 64 bits, deep nesting and
// messages too large are each an error with a reason, never an exception;
// counts a guest reports are clamped to its RAM.
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "members/qemu/qmp_decode.h"
#include "members/qemu/qmp_stream.h"

namespace cmm::hv {
namespace {

using json = nlohmann::json;
constexpr uint64_t kRam = uint64_t{512} << 20;

json Parse(const std::string& text) { return json::parse(text, nullptr, false); }

TEST(QmpDecode, PrintableEscapesWhatIsNotPrintableAscii) {
  EXPECT_EQ(Printable("ok \xff\xfe\n\x01"), "ok \\xff\\xfe\\x0a\\x01");
  EXPECT_EQ(Printable(std::string(100, 'a'), 10), "aaaaaaaaaa...");
  // A JSON string holding bytes that are not UTF-8 is shown, not thrown.
  json j = std::string("\xc3\x28");
  EXPECT_NO_THROW((void)Excerpt(j));
}

TEST(QmpDecode, FieldsOfTheWrongTypeAreRefusedByName) {
  const json m = Parse(R"({"n": 5, "neg": -1, "big": 1e30, "s": "x", "f": 1.5, "huge": 18446744073709551616})");
  EXPECT_EQ(UnsignedField(m, "n").value(), 5U);
  for (const char* key : {"neg", "big", "s", "f", "huge", "absent"}) {
    const auto r = UnsignedField(m, key);
    ASSERT_FALSE(r.has_value()) << key;
    EXPECT_EQ(r.error().code, ErrorCode::kProtocol);
    EXPECT_NE(r.error().message.find(key), std::string::npos) << r.error();
  }
  EXPECT_EQ(SignedField(m, "neg").value(), -1);
  EXPECT_FALSE(SignedField(m, "s").has_value());
  EXPECT_EQ(StringField(m, "s").value(), "x");
  EXPECT_FALSE(StringField(m, "n").has_value());
  // Not an object at all: every field is missing.
  EXPECT_FALSE(UnsignedField(json::array({1, 2}), "n").has_value());
  EXPECT_FALSE(StringField(json(), "s").has_value());
}

TEST(QmpDecode, MessagesAreEventsRepliesOrRefusalsAndAnythingElseIsAProtocolError) {
  auto ev = DecodeMessage(Parse(R"({"event": "BALLOON_CHANGE", "data": {"actual": 5}})"));
  ASSERT_TRUE(ev.has_value()) << ev.error();
  EXPECT_EQ(ev->kind, QmpMessage::Kind::kEvent);
  EXPECT_EQ(ev->event, "BALLOON_CHANGE");
  auto ret = DecodeMessage(Parse(R"({"return": {"actual": 5}, "id": 7})"));
  ASSERT_TRUE(ret.has_value()) << ret.error();
  EXPECT_EQ(ret->kind, QmpMessage::Kind::kReturn);
  EXPECT_EQ(ret->id, 7U);
  auto err = DecodeMessage(Parse(R"({"error": {"class": 42, "desc": ["x"]}, "id": 3})"));
  ASSERT_TRUE(err.has_value()) << err.error();
  EXPECT_EQ(err->error_class, "GenericError");
  EXPECT_EQ(err->error_desc, "refused");
  for (const char* bad : {R"([1, 2])", R"({"event": 5})", R"({"event": "X", "data": [1]})", R"({"return": 1})",
                          R"({"return": 1, "id": "7"})", R"({"return": 1, "id": -1})", R"({"id": 1})",
                          R"({"error": "no", "id": 1})"}) {
    const auto r = DecodeMessage(Parse(bad));
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kProtocol) << bad;
  }
}

TEST(QmpDecode, AGreetingOfTheWrongShapeIsRefusedWithoutThrowing) {
  EXPECT_EQ(DecodeGreeting(Parse(R"({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}}})")).value(),
            "7.2.0");
  EXPECT_EQ(DecodeGreeting(Parse(R"({"QMP": {}})")).value(), "");
  for (const char* bad : {R"({"QMP": []})", R"({"QMP": 1})", R"({"hello": 1})",
                          R"({"QMP": {"version": {"qemu": {"major": "7", "minor": 2, "micro": 0}}}})"}) {
    EXPECT_FALSE(DecodeGreeting(Parse(bad)).has_value()) << bad;
  }
}

TEST(QmpDecode, MemorySizeMustBeSomeAndNoMoreThanAMachineHas) {
  EXPECT_EQ(DecodeMemorySize(Parse(R"({"base-memory": 536870912, "plugged-memory": 0})")).value(), kRam);
  EXPECT_EQ(DecodeMemorySize(Parse(R"({"base-memory": 536870912})")).value(), kRam);
  for (const char* bad : {R"({"base-memory": 0})", R"({"base-memory": "lots"})", R"([536870912])",
                          R"({"base-memory": 18446744073709551615})",
                          R"({"base-memory": 4503599627370496, "plugged-memory": 4503599627370496})",
                          R"({"base-memory": 536870912, "plugged-memory": -1})"}) {
    EXPECT_FALSE(DecodeMemorySize(Parse(bad)).has_value()) << bad;
  }
}

TEST(QmpDecode, TheBalloonsActualIsWithinTheVmsRam) {
  EXPECT_EQ(DecodeBalloonActual(Parse(R"({"actual": 1048576})"), kRam).value(), 1048576U);
  EXPECT_EQ(DecodeBalloonActual(Parse(R"({"actual": 536870912})"), kRam).value(), kRam);
  for (const char* bad : {R"({"actual": 536870913})", R"({"actual": -5})", R"({"actual": "1"})", R"([])",
                          R"({"actual": 1e300})"}) {
    EXPECT_FALSE(DecodeBalloonActual(Parse(bad), kRam).has_value()) << bad;
  }
}

TEST(QmpDecode, QomListEntriesNeedANameAndAType) {
  auto l = DecodeQomList(Parse(R"([{"name": "balloon0", "type": "child<virtio-balloon-pci>"}])"));
  ASSERT_TRUE(l.has_value()) << l.error();
  ASSERT_EQ(l->size(), 1U);
  EXPECT_EQ((*l)[0].name, "balloon0");
  EXPECT_FALSE(DecodeQomList(Parse(R"({"name": "x"})")).has_value());
  EXPECT_FALSE(DecodeQomList(Parse(R"([{"name": "x", "type": 42}])")).has_value());
  EXPECT_FALSE(DecodeQomList(Parse(R"([7])")).has_value());
}

TEST(QmpDecode, AGuestClaimingAPebibyteFreeIsClampedToItsRamNotBelieved) {
  auto g = DecodeGuestStats(Parse(R"({"last-update": 100, "stats": {"stat-free-memory": 1125899906842624,
      "stat-total-memory": 536870912, "stat-available-memory": 18446744073709551615, "stat-disk-caches": 1048576,
      "stat-major-faults": 9, "stat-swap-in": 3}})"),
                            kRam);
  ASSERT_TRUE(g.has_value()) << g.error();
  EXPECT_EQ(g->last_update, 100);
  EXPECT_EQ(g->free, kRam);
  EXPECT_EQ(g->total, kRam);
  EXPECT_FALSE(g->available.has_value());  // QEMU's "not reported"
  EXPECT_EQ(g->disk_caches, 1048576U);
  EXPECT_EQ(g->major_faults, 9U);
  EXPECT_EQ(g->swap_in, 3U);
  for (const char* bad : {R"({"last-update": "now", "stats": {}})", R"({"last-update": -1, "stats": {}})",
                          R"({"last-update": 1, "stats": []})", R"({"last-update": 1})",
                          R"({"last-update": 1, "stats": {"stat-free-memory": "x"}})",
                          R"({"last-update": 1, "stats": {"stat-free-memory": 1e30}})",
                          R"({"last-update": 1, "stats": {"stat-free-memory": 99999999999999999999999}})"}) {
    const auto r = DecodeGuestStats(Parse(bad), kRam);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kProtocol);
  }
}

TEST(QmpStreamTest, AMessageInOneBytePiecesComesOutWhole) {
  QmpStream s;
  const std::string text = R"({"return": {"a": "} \" {"}, "id": 1})" "\r\n" R"({"event": "X"})";
  int whole = 0;
  for (const char c : text) {
    s.Append(std::string_view(&c, 1));
    auto m = s.Take();
    ASSERT_TRUE(m.has_value()) << m.error();
    if (*m) ++whole;
  }
  EXPECT_EQ(whole, 2);
}

TEST(QmpStreamTest, TooDeepTooLargeOrNotAnObjectIsAProtocolError) {
  {
    QmpStream s;
    s.Append("{\"a\":" + std::string(QmpStream::kMaxDepth + 1, '[') + "]");
    auto m = s.Take();
    ASSERT_FALSE(m.has_value());
    EXPECT_NE(m.error().message.find("nested"), std::string::npos) << m.error();
  }
  {
    QmpStream s;
    s.Append("{\"a\": \"" + std::string(QmpStream::kMaxMessage, 'x'));
    auto m = s.Take();
    ASSERT_FALSE(m.has_value());
    EXPECT_NE(m.error().message.find("over 1 MiB"), std::string::npos) << m.error();
  }
  {
    QmpStream s;
    s.Append("\xff\xfe garbage\n");
    auto m = s.Take();
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().message, "QMP sent something that is not a JSON object: \\xff\\xfe garbage");
  }
  {
    QmpStream s;
    s.Append("{\"a\": \"\xff\"}\n");  // whole, but not UTF-8
    auto m = s.Take();
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code, ErrorCode::kProtocol);
  }
}

}  // namespace
}  // namespace cmm::hv
