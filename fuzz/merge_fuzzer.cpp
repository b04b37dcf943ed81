// The text merge (engine/merge.hpp) against RFC 7396's algorithm over trees
// (tests/support/merge_oracle.hpp). An input is two lines, the target's data and the patch's
// data; each is read as a put or patch body's `data` is (ParseWriteRequest), which gives the
// stored forms MergePatch takes. Checked:
//  - where both lines are accepted, the merge succeeds and equals the tree merge, printed as
//    documents are stored;
//  - the target line as it is (whitespace, escapes, any number spelling) merges to the same
//    document when it is a valid object, and never reads out of bounds when it is not (a
//    corrupt stored record).
#include <string>

#include "engine/engine.hpp"
#include "engine/json.hpp"
#include "engine/merge.hpp"
#include "engine/request_body.hpp"
#include "fuzz/support.hpp"
#include "tests/support/merge_oracle.hpp"

namespace twins::fuzz {

void FuzzOne(std::string_view input) {
  auto lines = Lines(input, 2);
  if (!lines) return;
  const std::string_view target_text = (*lines)[0];
  const std::string_view patch_text = (*lines)[1];

  auto patch = ParseWriteRequest(Body(patch_text), Limits());
  auto target = ParseRequestBody(Body(target_text), true, "data");
  // Read on its own too, the line must be one object: {"":1},"x":2 makes a valid body once
  // wrapped, but is no object's text.
  const bool target_ok = target.ok() && target->data && target->data_is_object && target->data_error.ok() &&
                         ParseRequestBody(target_text, false, "data").ok();

  if (!patch.ok()) return;
  // The target line as it is: whatever it holds, the merge must stay in bounds.
  std::string raw_merged;
  const Status raw = MergePatch(target_text, patch->data, &raw_merged);
  if (!target_ok) return;

  std::string merged;
  const Status s = MergePatch(*target->data, patch->data, &merged);
  FUZZ_CHECK(s.ok());
  Json target_tree(cJSON_ParseWithLength(target->data->data(), target->data->size()));
  Json patch_tree(cJSON_ParseWithLength(patch->data.data(), patch->data.size()));
  FUZZ_CHECK(target_tree != nullptr && patch_tree != nullptr);
  const std::string expected = PrintJson(test::ReferenceMerge(target_tree.get(), patch_tree.get()).get());
  FUZZ_CHECK_EQ(merged, expected);

  FUZZ_CHECK(raw.ok());
  Json raw_tree(cJSON_ParseWithLength(raw_merged.data(), raw_merged.size()));
  FUZZ_CHECK(raw_tree != nullptr);
  FUZZ_CHECK_EQ(PrintJson(raw_tree.get()), expected);
}

}  // namespace twins::fuzz
