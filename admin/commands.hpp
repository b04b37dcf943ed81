// The commands of mosquitto-twins-admin. Each reports on stderr and returns the exit status:
// 0 done, 1 refused or failed (nothing written then, see each command).
#pragma once

#include <string>

namespace twins::admin {

// Every document and watch of the database at `db` (which a running broker may hold) to
// `out` ("-": stdout) in the export format (admin/format.hpp). A file appears only whole.
int Export(const std::string& db, const std::string& out);

// The export at `in` ("-": stdin) into a new database at `db`, or into an empty one (a twins
// database without documents, watches or change log, or an empty directory). All or nothing:
// the input is read and checked whole first, the database is built beside `db` and renamed
// into place.
int Import(const std::string& db, const std::string& in);

// Reads the whole database at `db` (which a running broker may hold) and checks that every
// record decodes and that every document agrees with its latest change-log entry. Prints the
// counts on stdout, each problem on stderr; 1 when there is any problem.
int Check(const std::string& db);

// "mosquitto-twins-admin: " + message, on stderr; returns 1.
int Fail(const std::string& message);

}  // namespace twins::admin
