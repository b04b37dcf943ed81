#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <utility>
#include <vector>

#include "admin/commands.hpp"
#include "admin/import.hpp"
#include "store/document_store.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {
namespace {

namespace fs = std::filesystem;

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
enum class Found { kMissing, kEmptyDirectory, kDatabase, kOther };

Found Inspect(const fs::path& path) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  if (status.type() == fs::file_type::not_found) return Found::kMissing;
  if (status.type() != fs::file_type::directory) return Found::kOther;
  if (fs::is_empty(path, error) && !error) return Found::kEmptyDirectory;
  return fs::is_regular_file(path / "CURRENT", error) ? Found::kDatabase : Found::kOther;
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

int ImportIntoRocksDb(const std::string& db, const std::string& in) {
  fs::path target(db);
  if (!target.has_filename()) target = target.parent_path();  // "dir/" names dir
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(parent, error)) return Fail("import: " + parent.string() + " is not a directory");

  auto input = ReadInput(in);
  if (!input.ok()) return Fail("import: " + input.status().message() + "; nothing imported");

  // An empty database is replaced whole. It is never opened as a store: closing one flushes to
  // its path, which would then be the new database's. Its lock is held instead.
  int existing = -1;
  switch (Inspect(target)) {
    case Found::kMissing:
    case Found::kEmptyDirectory:
      break;
    case Found::kOther:
      return Fail("import: " + target.string() + " exists and is neither an empty directory nor a database");
    case Found::kDatabase: {
      existing = LockDatabase(target);
      if (existing < 0) {
        return Fail("import: refused: the database at " + target.string() +
                    " is in use (a running broker?) or its LOCK file cannot be opened");
      }
      // Read as a snapshot: a refusal writes nothing (opening it as a store could upgrade its
      // schema).
      auto snapshot = OpenRocksDbSnapshot(target.string());
      Status empty = snapshot.ok() ? CheckEmpty(**snapshot) : snapshot.status();
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

}  // namespace

int Import(const Target& target, const std::string& in) {
  if (!target.postgres()) return ImportIntoRocksDb(target.db, in);
  auto input = ReadInput(in);
  if (!input.ok()) return Fail("import: " + input.status().message() + "; nothing imported");
  return ImportIntoPostgres(target, std::move(input).value());
}

}  // namespace twins::admin
