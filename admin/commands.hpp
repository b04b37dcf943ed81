// The commands of mosquitto-twins-admin. Each reports on stderr and returns the exit status:
// 0 done, 1 refused or failed (nothing written then, see each command).
#pragma once

#include <string>

#include "admin/target.hpp"

namespace twins::admin {

// Every document and watch of the target (which running brokers may use) to `out` ("-":
// stdout) in the export format (admin/format.hpp), as one moment of it. A file appears only
// whole.
int Export(const Target& target, const std::string& out);

// The export at `in` ("-": stdin) into the target, which must hold no document, watch or
// change-log entry, and which no broker may be using. The input is read and checked whole
// first. RocksDB: a new database, or an empty one (or an empty directory), built beside and
// renamed into place. PostgreSQL: the schema is created if it is missing; what was written is
// removed again if a later step fails.
int Import(const Target& target, const std::string& in);

// Reads the whole target (which running brokers may use) and checks that every record decodes
// and that every document agrees with its latest change-log entry. Prints the counts on
// stdout, each problem on stderr; 1 when there is any problem.
int Check(const Target& target);

// "mosquitto-twins-admin: " + message, on stderr; returns 1.
int Fail(const std::string& message);

}  // namespace twins::admin
