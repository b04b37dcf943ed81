// The in-band API's topic grammar (plugin/mqtt_requests.hpp), then the request it names run on
// an engine over memory. An input is "<client id>\n<topic>\n<payload>"; an input without two
// newlines is a topic alone, only classified. Checked against the grammar
// $SCW/twins/<twin>/<document>/<method>:
//  - outside the prefix nothing is ours; under it exactly three levels make a request, whose
//    parts put together give the topic back;
//  - a request's reply goes to the request topic plus /response/success or /response/error,
//    which is never taken for a request itself, and carries a JSON object.
#include <algorithm>
#include <memory>
#include <string>

#include "engine/engine.hpp"
#include "engine/json.hpp"
#include "fuzz/support.hpp"
#include "plugin/mqtt_requests.hpp"

namespace twins::fuzz {
namespace {

bool Within(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

TopicKind Classify(std::string_view topic, TwinTopic* parsed) {
  const TopicKind kind = ClassifyTopic(topic, parsed);
  const bool ours = topic.substr(0, kTwinTopicPrefix.size()) == kTwinTopicPrefix;
  if (!ours) {
    FUZZ_CHECK(kind == TopicKind::kNotTwin);
    return kind;
  }
  const std::string_view rest = topic.substr(kTwinTopicPrefix.size());
  const bool three_levels = std::count(rest.begin(), rest.end(), '/') == 2;
  FUZZ_CHECK(kind == (three_levels ? TopicKind::kMethod : TopicKind::kOtherTwin));
  if (kind != TopicKind::kMethod) return kind;
  for (std::string_view part : {parsed->twin, parsed->document, parsed->method}) {
    FUZZ_CHECK(Within(part, topic) && part.find('/') == std::string_view::npos);
  }
  const std::string rebuilt = std::string(kTwinTopicPrefix) + std::string(parsed->twin) + "/" +
                              std::string(parsed->document) + "/" + std::string(parsed->method);
  FUZZ_CHECK_EQ(rebuilt, std::string(topic));
  return kind;
}

void CheckReply(std::string_view topic, const Reply& reply) {
  FUZZ_CHECK_EQ(reply.topic, std::string(topic) + (reply.success ? "/response/success" : "/response/error"));
  TwinTopic ignored;
  FUZZ_CHECK(ClassifyTopic(reply.topic, &ignored) == TopicKind::kOtherTwin);
  Json payload(cJSON_ParseWithLength(reply.payload.data(), reply.payload.size()));
  FUZZ_CHECK(cJSON_IsObject(payload.get()));
  if (reply.success) {
    FUZZ_CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(payload.get(), "version")));
    FUZZ_CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(payload.get(), "data")));
  } else {
    FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(payload.get(), "error")));
  }
}

}  // namespace

void FuzzOne(std::string_view text) {
  auto lines = Lines(text, 3);
  TwinTopic parsed;
  if (!lines) {
    Classify(text, &parsed);
    return;
  }
  const std::string_view client_id = (*lines)[0], topic = (*lines)[1], payload = (*lines)[2];
  if (Classify(topic, &parsed) != TopicKind::kMethod) return;

  Engine engine(std::make_unique<MemoryStore>(), Limits());
  auto existing = ParseWriteRequest(R"({"data":{"a":1,"o":{"b":[1,2]}}})", Limits());
  FUZZ_CHECK(existing.ok());
  (void)engine.Put(client_id, "desired", existing.value());  // refused when the client id is no twin id

  // Admission as the plugin does it: the client's own twin (by client id), one token each.
  RateLimiter limiter(0, 1);
  Result<std::string_view> twin = AdmitRequest(limiter, Requester{client_id, {}}, parsed);
  CheckReply(topic, twin.ok() ? HandleTwinRequest(engine, *twin, topic, parsed, payload,
                                                  {Durability::kBeforeReturn, client_id, 0}, {})
                              : ErrorReply(topic, twin.status(), {}));
  CheckReply(topic, ErrorReply(topic, Status::Internal("the database cannot be written"), {}));
}

}  // namespace twins::fuzz
