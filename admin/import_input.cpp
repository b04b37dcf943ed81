#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <utility>

#include "admin/format.hpp"
#include "admin/import.hpp"

namespace twins::admin {
namespace {

Result<std::string> ReadAll(const std::string& in) {
  std::ostringstream text;
  if (in == "-") {
    text << std::cin.rdbuf();
    if (std::cin.bad()) return Status::Internal("cannot read stdin");
  } else {
    std::ifstream file(in, std::ios::binary);
    if (!file) return Status::Internal("cannot read " + in + ": " + std::strerror(errno));
    text << file.rdbuf();
    if (file.bad()) return Status::Internal("cannot read " + in);
  }
  return text.str();
}

Result<Input> Parse(const std::string& text) {
  Input input;
  std::set<std::pair<std::string, std::string>> documents;
  std::set<std::string> watches;
  size_t number = 0;
  bool ended = false;
  for (size_t at = 0; at < text.size();) {
    ++number;
    const size_t newline = text.find('\n', at);
    const size_t end = newline == std::string::npos ? text.size() : newline;
    const std::string_view text_line(text.data() + at, end - at);
    at = newline == std::string::npos ? text.size() : newline + 1;
    const std::string where = "line " + std::to_string(number) + ": ";
    if (ended) return Status::InvalidArgument("line", where + "nothing may follow the end line");
    auto line = ParseLine(text_line);
    if (!line.ok()) return Status::InvalidArgument(line.status().field(), where + line.status().message());
    if ((number == 1) != (line->type == Line::Type::kHeader)) {
      return Status::InvalidArgument(
          "type", where + (number == 1 ? "the first line must be the header" : "a header may only be the first line"));
    }
    switch (line->type) {
      case Line::Type::kHeader:
        input.seq = line->seq;
        break;
      case Line::Type::kDocument: {
        SnapshotDocument& document = line->document;
        if (!documents.insert({document.twin, document.doc}).second) {
          return Status::InvalidArgument("document_name",
                                         where + "document " + document.twin + "/" + document.doc + " twice");
        }
        input.documents.push_back(
            {std::move(document.twin), std::move(document.doc), std::move(document.document), nullptr});
        break;
      }
      case Line::Type::kWatch: {
        const WatchRecord& watch = line->watch;
        std::string key = watch.twin + '\0' + watch.doc + '\0' + watch.watcher;
        if (!watches.insert(std::move(key)).second) {
          return Status::InvalidArgument(
              "watcher", where + "watch of " + watch.twin + "/" + watch.doc + " by " + watch.watcher + " twice");
        }
        input.watches.push_back(line->watch);
        break;
      }
      case Line::Type::kEnd:
        if (line->documents != input.documents.size() || line->watches != input.watches.size()) {
          return Status::InvalidArgument(
              "end", where + "the end line counts " + std::to_string(line->documents) + " documents and " +
                         std::to_string(line->watches) + " watches, the input holds " +
                         std::to_string(input.documents.size()) + " and " + std::to_string(input.watches.size()));
        }
        ended = true;
        break;
    }
  }
  if (number == 0) return Status::InvalidArgument("line", "the input is empty");
  if (!ended) return Status::InvalidArgument("end", "the input ends without its end line (truncated?)");
  return input;
}

}  // namespace

Result<Input> ReadInput(const std::string& in) {
  auto text = ReadAll(in);
  if (!text.ok()) return text.status();
  return Parse(*text);
}

Status CheckEmpty(const StoreSnapshot& snapshot) {
  uint64_t documents = 0, watches = 0;
  Status s = snapshot.Documents([&](SnapshotDocument&) {
    ++documents;
    return Status::Ok();
  });
  if (s.ok()) {
    s = snapshot.Watches([&](WatchRecord&) {
      ++watches;
      return Status::Ok();
    });
  }
  if (!s.ok()) return s;
  if (documents > 0) return Status::InvalidArgument("db", "it holds " + std::to_string(documents) + " documents");
  if (watches > 0) return Status::InvalidArgument("db", "it holds " + std::to_string(watches) + " watches");
  const uint64_t seq = snapshot.changes().newest;
  if (seq > 0) return Status::InvalidArgument("db", "its change log has reached seq " + std::to_string(seq));
  return Status::Ok();
}

}  // namespace twins::admin
