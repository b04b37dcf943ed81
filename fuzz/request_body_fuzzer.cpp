// The request body reader (engine/request_body.hpp) and ParseWriteRequest (engine/engine.hpp)
// on any bytes. Besides memory errors and undefined behaviour, it checks that
//  - reading `data` or not, the same text is accepted, with the same version;
//  - ParseWriteRequest accepts exactly the bodies whose `data` passes the twin rules;
//  - the stored form of `data` is what cJSON reads from the body, printed as documents are
//    stored (PrintJson), and reading it again changes nothing.
#include <algorithm>
#include <string>

#include "engine/engine.hpp"
#include "engine/json.hpp"
#include "engine/request_body.hpp"
#include "fuzz/support.hpp"

namespace twins::fuzz {
namespace {

// cJSON refuses more than 1000 levels of nesting; the reader takes one more. Fewer brackets
// than that in the whole text is a bound on its depth that needs no parser.
constexpr size_t kCjsonNesting = 1000;

bool ShallowForCjson(std::string_view text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) { return c == '{' || c == '['; })) <
         kCjsonNesting;
}

void CheckStoredForm(std::string_view text, const RequestBody& body) {
  const std::string& data = *body.data;
  if (ShallowForCjson(text)) {
    Json whole(cJSON_ParseWithLength(text.data(), text.size()));
    FUZZ_CHECK(whole != nullptr);
    const cJSON* member = cJSON_GetObjectItemCaseSensitive(whole.get(), "data");
    FUZZ_CHECK(member != nullptr);
    FUZZ_CHECK_EQ(PrintJson(member), data);
  }
  Json reread(cJSON_ParseWithLength(data.data(), data.size()));
  FUZZ_CHECK(reread != nullptr);
  FUZZ_CHECK_EQ(PrintJson(reread.get()), data);

  auto again = ParseRequestBody(Body(data), true, "data");
  FUZZ_CHECK(again.ok() && again->data && again->data_error.ok());
  FUZZ_CHECK_EQ(*again->data, data);
  FUZZ_CHECK(again->data_depth == body.data_depth);
  FUZZ_CHECK(again->data_is_object == body.data_is_object);
  FUZZ_CHECK_EQ(again->reserved_key_path, body.reserved_key_path);
}

}  // namespace

void FuzzOne(std::string_view text) {
  auto body = ParseRequestBody(text, true, "data");
  auto envelope = ParseRequestBody(text, false, "data");
  FUZZ_CHECK(body.ok() == envelope.ok());
  if (!body.ok()) {
    FUZZ_CHECK_EQ(body.status().message(), envelope.status().message());
    FUZZ_CHECK(body.status().code() == Code::kInvalidArgument);
  } else {
    FUZZ_CHECK(body->version_kind == envelope->version_kind);
    FUZZ_CHECK(!envelope->data && envelope->data_error.ok() && envelope->reserved_key_path.empty());
    if (body->data && body->data_error.ok()) CheckStoredForm(text, *body);
    if (!body->reserved_key_path.empty()) FUZZ_CHECK(body->reserved_key_path.rfind("data.", 0) == 0);
  }

  Limits limits;
  limits.max_depth = 6;  // small, so that both sides of the depth check are reached
  auto request = ParseWriteRequest(text, limits, BodyOf::kPutOrPatch);
  if (request.ok()) {
    FUZZ_CHECK(body.ok() && body->data && body->data_is_object && body->data_error.ok());
    FUZZ_CHECK(body->data_depth <= limits.max_depth);
    FUZZ_CHECK_EQ(request->data, *body->data);
    FUZZ_CHECK_EQ(request->reserved_key_path, body->reserved_key_path);
  } else if (body.ok() && body->data && body->data_is_object && body->data_error.ok() &&
             body->data_depth <= limits.max_depth) {
    FUZZ_CHECK(request.status().field() == "version");  // only the version can be wrong then
  }
  auto for_delete = ParseWriteRequest(text, limits, BodyOf::kDelete);
  if (!text.empty() && !body.ok()) FUZZ_CHECK(!for_delete.ok());
  if (request.ok()) FUZZ_CHECK(for_delete.ok() && for_delete->expected.version == request->expected.version);
}

}  // namespace twins::fuzz
