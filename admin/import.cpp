#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "admin/commands.hpp"
#include "admin/format.hpp"
#include "store/document_store.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {
namespace {

namespace fs = std::filesystem;

struct Input {
  uint64_t seq = 0;
  std::vector<DocumentWrite> documents;
  std::vector<WatchRecord> watches;
};

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

// The whole input, checked: a header first, an end line last with the right counts, no
// document or watch twice.
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

// Writes everything into a new database at `path`, durably.
Status Build(const std::string& path, Input input) {
  RocksDbOptions options;
  options.path = path;
  options.sync_writes = true;
  auto store = OpenRocksDbStore(options);
  if (!store.ok()) return store.status();
  // The log holds no entry of the imported documents: it goes on after the exported seq.
  if (input.seq > 0) {
    Status s = (*store)->StartChangeLogAfter(input.seq);
    if (!s.ok()) return s;
  }
  if (!input.documents.empty()) {
    Status s = (*store)->Write(std::move(input.documents));
    if (!s.ok()) return s;
  }
  for (const WatchRecord& watch : input.watches) {
    Status s = (*store)->PutWatch(watch);
    if (!s.ok()) return s;
  }
  return (*store)->Sync();
}

// What is at the import's target.
enum class Target { kMissing, kEmptyDirectory, kDatabase, kOther };

Target Inspect(const fs::path& path) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  if (status.type() == fs::file_type::not_found) return Target::kMissing;
  if (status.type() != fs::file_type::directory) return Target::kOther;
  if (fs::is_empty(path, error) && !error) return Target::kEmptyDirectory;
  return fs::is_regular_file(path / "CURRENT", error) ? Target::kDatabase : Target::kOther;
}

// Ok when the twins database at `path` has no document, watch or change-log entry, else
// kInvalidArgument saying what it has (or why it cannot be read). Read as a snapshot: a
// refusal writes nothing (opening it as a store could upgrade its schema).
Status CheckEmpty(const std::string& path) {
  auto snapshot = OpenRocksDbSnapshot(path);
  if (!snapshot.ok()) return snapshot.status();
  uint64_t documents = 0, watches = 0;
  Status s = (*snapshot)->Documents([&](SnapshotDocument&) {
    ++documents;
    return Status::Ok();
  });
  if (s.ok()) {
    s = (*snapshot)->Watches([&](WatchRecord&) {
      ++watches;
      return Status::Ok();
    });
  }
  if (!s.ok()) return s;
  if (documents > 0) return Status::InvalidArgument("db", "it holds " + std::to_string(documents) + " documents");
  if (watches > 0) return Status::InvalidArgument("db", "it holds " + std::to_string(watches) + " watches");
  const uint64_t seq = (*snapshot)->changes().newest;
  if (seq > 0) return Status::InvalidArgument("db", "its change log has reached seq " + std::to_string(seq));
  return Status::Ok();
}

void SyncDirectory(const fs::path& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

// RocksDB's lock on the database at `path` (an fcntl lock on its LOCK file, as RocksDB takes
// it), so that no broker opens it while it is replaced; -1 when a process holds it already.
int LockDatabase(const fs::path& path) {
  const int fd = open((path / "LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (fcntl(fd, F_SETLK, &lock) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int Import(const std::string& db, const std::string& in) {
  fs::path target(db);
  if (!target.has_filename()) target = target.parent_path();  // "dir/" names dir
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(parent, error)) return Fail("import: " + parent.string() + " is not a directory");

  auto text = ReadAll(in);
  if (!text.ok()) return Fail("import: " + text.status().message());
  auto input = Parse(*text);
  if (!input.ok()) return Fail("import: " + input.status().message() + "; nothing imported");
  text = std::string();

  // An empty database is replaced whole. It is never opened as a store: closing one flushes to
  // its path, which would then be the new database's. Its lock is held instead.
  int existing = -1;
  switch (Inspect(target)) {
    case Target::kMissing:
    case Target::kEmptyDirectory:
      break;
    case Target::kOther:
      return Fail("import: " + target.string() + " exists and is neither an empty directory nor a database");
    case Target::kDatabase: {
      existing = LockDatabase(target);
      if (existing < 0) {
        return Fail("import: refused: the database at " + target.string() +
                    " is in use (a running broker?) or its LOCK file cannot be opened");
      }
      Status empty = CheckEmpty(target.string());
      if (!empty.ok()) close(existing);
      if (empty.code() == Code::kInvalidArgument) {
        return Fail("import: refused: the database at " + target.string() + " is not empty: " + empty.message() +
                    "; import only into a new or empty database");
      }
      if (!empty.ok()) return Fail("import: refused: " + empty.message());
      break;
    }
  }

  std::string building = (parent / ("." + target.filename().string() + ".import-XXXXXX")).string();
  if (mkdtemp(building.data()) == nullptr) {
    if (existing >= 0) close(existing);
    return Fail("import: cannot create a directory beside " + target.string() + ": " + std::strerror(errno));
  }
  // mkdtemp makes it 0700: give it the mode a broker's first start would (0777 less the umask).
  const mode_t mask = umask(0);
  umask(mask);
  chmod(building.c_str(), 0777 & ~mask);
  const size_t documents = input->documents.size(), watches = input->watches.size();
  Status built = Build(building, std::move(input).value());
  if (!built.ok()) {
    if (existing >= 0) close(existing);
    fs::remove_all(building, error);
    return Fail("import: " + built.message() + "; nothing imported");
  }
  SyncDirectory(building);
  // One rename puts the whole database in place: onto a missing path or an empty directory,
  // or exchanged with the empty database, which is then removed.
  const unsigned flags = existing >= 0 ? RENAME_EXCHANGE : 0;
  const bool moved = renameat2(AT_FDCWD, building.c_str(), AT_FDCWD, target.c_str(), flags) == 0;
  const std::string why = moved ? "" : std::strerror(errno);
  if (existing >= 0) close(existing);
  if (!moved || flags != 0) fs::remove_all(building, error);
  if (!moved) {
    return Fail("import: cannot move the new database to " + target.string() + ": " + why + "; nothing imported");
  }
  SyncDirectory(parent);
  std::cout << "imported " << documents << " documents and " << watches << " watches into " << target.string() << "\n";
  return 0;
}

}  // namespace twins::admin
