#include "engine/names.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twins {
namespace {

TEST(NamesTest, TwinIdsOfOneTo128Utf8BytesAreValid) {
  EXPECT_TRUE(ValidateTwinId("a").ok());
  EXPECT_TRUE(ValidateTwinId("device-1 with spaces:and.dots").ok());
  EXPECT_TRUE(ValidateTwinId("capteur-\xc3\xa9t\xc3\xa9").ok());
  EXPECT_TRUE(ValidateTwinId(std::string(128, 'x')).ok());
}

TEST(NamesTest, BadTwinIdsAreRejected) {
  for (const std::string& id : {std::string(), std::string(129, 'x'), std::string("a/b"), std::string("a+b"),
                                std::string("a#b"), std::string("a\0b", 3), std::string("\xff")}) {
    Status s = ValidateTwinId(id);
    EXPECT_FALSE(s.ok()) << id;
    EXPECT_EQ(s.field(), "twin_id");
  }
}

TEST(NamesTest, DocumentNamesUseTheSeedAlphabet) {
  EXPECT_TRUE(ValidateDocumentName("desired_state-1.v~2").ok());
  EXPECT_TRUE(ValidateDocumentName("_config").ok());
  EXPECT_TRUE(ValidateDocumentName(std::string(128, 'd')).ok());
}

TEST(NamesTest, BadDocumentNamesAreRejected) {
  for (const std::string& name : {std::string(), std::string(129, 'd'), std::string("a/b"), std::string("a b"),
                                  std::string("caf\xc3\xa9"), std::string("_other"), std::string("_")}) {
    Status s = ValidateDocumentName(name);
    EXPECT_FALSE(s.ok()) << name;
    EXPECT_EQ(s.field(), "document_name");
  }
}

}  // namespace
}  // namespace twins
