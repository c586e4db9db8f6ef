#include "client/cli/json.h"

#include "gtest/gtest.h"

namespace fjord::cli {
namespace {

TEST(JsonStringTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonString(""), R"("")");
  EXPECT_EQ(JsonString("plain"), R"("plain")");
  EXPECT_EQ(JsonString("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(JsonString("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(JsonString(std::string("\x00\x01\x1f\x7f", 4)),
            R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(JsonString("/"), R"("/")");
}

TEST(JsonStringTest, KeepsValidUtf8) {
  EXPECT_EQ(JsonString("h\xC3\xA9llo"), "\"h\xC3\xA9llo\"");          // é
  EXPECT_EQ(JsonString("\xE2\x82\xAC"), "\"\xE2\x82\xAC\"");          // €
  EXPECT_EQ(JsonString("\xF0\x9F\x98\x80"), "\"\xF0\x9F\x98\x80\"");  // 😀
}

TEST(JsonStringTest, ReplacesInvalidUtf8) {
  const std::string kReplacement = "\xEF\xBF\xBD";
  EXPECT_EQ(JsonString("\xFF"), "\"" + kReplacement + "\"");
  // Truncated sequence, then ASCII.
  EXPECT_EQ(JsonString("\xE2\x82x"),
            "\"" + kReplacement + kReplacement + "x\"");
  // Overlong encoding of '/'.
  EXPECT_EQ(JsonString("\xC0\xAF"), "\"" + kReplacement + kReplacement + "\"");
  // UTF-16 surrogate encoded in UTF-8.
  EXPECT_EQ(JsonString("\xED\xA0\x80"),
            "\"" + kReplacement + kReplacement + kReplacement + "\"");
}

TEST(JsonWriterTest, NestsWithCommas) {
  JsonWriter w;
  w.BeginObject()
      .Key("n")
      .Int(-1)
      .Key("xs")
      .BeginArray()
      .Int(1)
      .String("two")
      .Null()
      .Bool(true)
      .EndArray()
      .Key("o")
      .BeginObject()
      .EndObject()
      .Key("e")
      .BeginArray()
      .EndArray()
      .EndObject();
  EXPECT_EQ(w.str(), R"({"n":-1,"xs":[1,"two",null,true],"o":{},"e":[]})");
}

TEST(JsonWriterTest, ArrayOfObjects) {
  JsonWriter w;
  w.BeginArray();
  for (int i = 0; i < 2; ++i) {
    w.BeginObject().Key("k\"").String("v\n").EndObject();
  }
  w.EndArray();
  EXPECT_EQ(w.str(), R"([{"k\"":"v\n"},{"k\"":"v\n"}])");
}

}  // namespace
}  // namespace fjord::cli
