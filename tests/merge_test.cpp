#include "merge.hpp"

#include <gtest/gtest.h>

#include "json.hpp"

namespace twins {
namespace {

struct MergeCase {
  const char* target;
  const char* patch;
  const char* expected;
};

class MergeTest : public testing::TestWithParam<MergeCase> {};

TEST_P(MergeTest, MatchesExpectedDocument) {
  const MergeCase& c = GetParam();
  auto target = ParseJson(c.target, "data");
  auto patch = ParseJson(c.patch, "data");
  ASSERT_TRUE(target.ok() && patch.ok());
  ASSERT_TRUE(MergePatch(target->get(), patch->get()));
  EXPECT_EQ(PrintJson(target->get()), c.expected);
}

// RFC 7396 appendix A, every example whose target and patch are objects (twin data always
// is), the non-object ones nested one level down, plus the twin rules the seed spells out.
INSTANTIATE_TEST_SUITE_P(
    Rfc7396, MergeTest,
    testing::Values(MergeCase{R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
                    MergeCase{R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
                    MergeCase{R"({"a":"b"})", R"({"a":null})", R"({})"},
                    MergeCase{R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
                    MergeCase{R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
                    MergeCase{R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
                    MergeCase{R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
                    MergeCase{R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
                    MergeCase{R"({"x":["a","b"]})", R"({"x":["c","d"]})", R"({"x":["c","d"]})"},
                    MergeCase{R"({"x":{"a":"b"}})", R"({"x":["c"]})", R"({"x":["c"]})"},
                    MergeCase{R"({"x":{"a":"foo"}})", R"({"x":null})", R"({})"},
                    MergeCase{R"({"x":{"a":"foo"}})", R"({"x":"bar"})", R"({"x":"bar"})"},
                    MergeCase{R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
                    MergeCase{R"({"x":[1,2]})", R"({"x":{"a":"b","c":null}})", R"({"x":{"a":"b"}})"},
                    MergeCase{R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"}));

INSTANTIATE_TEST_SUITE_P(
    TwinRules, MergeTest,
    testing::Values(MergeCase{R"({"a":1,"b":2})", R"({})", R"({"a":1,"b":2})"},
                    MergeCase{R"({"a":1,"b":2,"c":3})", R"({"b":20})", R"({"a":1,"b":20,"c":3})"},
                    MergeCase{R"({"a":true})", R"({"a":false})", R"({"a":false})"},
                    MergeCase{R"({"a":{"b":{"c":1,"d":2}}})", R"({"a":{"b":{"c":null}}})", R"({"a":{"b":{"d":2}}})"},
                    MergeCase{R"({"a":[1,2,3]})", R"({"a":[]})", R"({"a":[]})"},
                    MergeCase{R"({"a":1})", R"({"missing":null})", R"({"a":1})"}));

}  // namespace
}  // namespace twins
