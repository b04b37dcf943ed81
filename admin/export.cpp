#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "admin/commands.hpp"
#include "admin/format.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

Status WriteLine(std::FILE* file, const std::string& line) {
  if (std::fwrite(line.data(), 1, line.size(), file) != line.size() || std::fputc('\n', file) == EOF) {
    return Status::Internal(std::strerror(errno));
  }
  return Status::Ok();
}

// The whole export, into `file`.
Status WriteExport(const StoreSnapshot& snapshot, std::FILE* file) {
  Status s = WriteLine(file, HeaderLine(snapshot.schema(), snapshot.changes().newest));
  uint64_t documents = 0, watches = 0;
  if (s.ok()) {
    s = snapshot.Documents([&](SnapshotDocument& document) {
      auto line = DocumentLine(document);
      if (!line.ok()) {
        return Status::Internal("document " + document.twin + "/" + document.doc + ": " + line.status().message());
      }
      ++documents;
      return WriteLine(file, *line);
    });
  }
  if (s.ok()) {
    s = snapshot.Watches([&](WatchRecord& watch) {
      auto line = WatchLine(watch);
      if (!line.ok()) {
        return Status::Internal("watch of " + watch.twin + "/" + watch.doc + ": " + line.status().message());
      }
      ++watches;
      return WriteLine(file, *line);
    });
  }
  if (s.ok()) s = WriteLine(file, EndLine(documents, watches));
  if (s.ok() && std::fflush(file) != 0) s = Status::Internal(std::strerror(errno));
  return s;
}

}  // namespace

int Export(const Target& target, const std::string& out) {
  auto snapshot = OpenSnapshot(target);
  if (!snapshot.ok()) return Fail("export: " + snapshot.status().message());
  if (out == "-") {
    Status s = WriteExport(**snapshot, stdout);
    return s.ok() ? 0 : Fail("export: " + s.message());
  }
  // Written beside `out` and renamed over it once complete and on disk.
  std::string temp = out + ".XXXXXX";
  const int fd = mkstemp(temp.data());
  if (fd < 0) return Fail("export: cannot create " + temp + ": " + std::strerror(errno));
  std::unique_ptr<std::FILE, FileCloser> file(fdopen(fd, "w"));
  if (file == nullptr) {
    close(fd);
    unlink(temp.c_str());
    return Fail("export: cannot write " + temp + ": " + std::strerror(errno));
  }
  Status s = WriteExport(**snapshot, file.get());
  if (s.ok() && fsync(fd) != 0) s = Status::Internal(std::strerror(errno));
  if (s.ok() && std::fclose(file.release()) != 0) s = Status::Internal(std::strerror(errno));
  if (s.ok() && std::rename(temp.c_str(), out.c_str()) != 0) s = Status::Internal(std::strerror(errno));
  if (!s.ok()) {
    unlink(temp.c_str());
    return Fail("export: cannot write " + out + ": " + s.message());
  }
  return 0;
}

}  // namespace twins::admin
