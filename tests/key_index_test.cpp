#include "engine/key_index.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace twins {
namespace {

struct KeysAt {
  const std::vector<std::string>* keys;
  std::string_view operator()(uint32_t i) const { return (*keys)[i]; }
};

// Keys of every length up to 40 bytes (KeyHash reads them in words of 8, 4 or single bytes,
// overlapping), differing in one byte at each position: each is found, each again is a duplicate.
TEST(KeyIndexTest, FindsKeysOfEveryLengthThatDifferInOneByte) {
  std::vector<std::string> keys;
  for (size_t length = 0; length <= 40; ++length) {
    keys.emplace_back(length, 'k');
    for (size_t at = 0; at < length; ++at) {
      std::string key(length, 'k');
      key[at] = 'q';
      keys.push_back(key);
    }
  }
  KeyIndex index;
  for (uint32_t i = 0; i < keys.size(); ++i) ASSERT_EQ(index.Insert(keys[i], i, KeysAt{&keys}), KeyIndex::kNone);
  EXPECT_EQ(index.size(), keys.size());
  for (uint32_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(index.Find(keys[i], KeysAt{&keys}), i);
    const std::string again = keys[i];  // another copy of the same key
    EXPECT_EQ(index.Insert(again, 0, KeysAt{&keys}), i);
  }
  EXPECT_EQ(index.Find("absent", KeysAt{&keys}), KeyIndex::kNone);
  EXPECT_EQ(index.Find(std::string(41, 'k'), KeysAt{&keys}), KeyIndex::kNone);
}

// Keys whose bytes differ only past a NUL, and keys that are prefixes of one another.
TEST(KeyIndexTest, TellsApartKeysThatDifferOnlyInLengthOrAfterNul) {
  std::vector<std::string> keys = {std::string("a\0b", 3),
                                   std::string("a\0c", 3),
                                   std::string("a", 1),
                                   std::string("a\0", 2),
                                   "",
                                   "abcdefgh",
                                   "abcdefghi",
                                   "abcdefg"};
  KeyIndex index;
  for (uint32_t i = 0; i < keys.size(); ++i) ASSERT_EQ(index.Insert(keys[i], i, KeysAt{&keys}), KeyIndex::kNone);
  for (uint32_t i = 0; i < keys.size(); ++i) EXPECT_EQ(index.Find(keys[i], KeysAt{&keys}), i);
}

}  // namespace
}  // namespace twins
