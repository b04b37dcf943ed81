// mosquitto-twins-admin: the twins database outside the broker, RocksDB or PostgreSQL. Backups
// while brokers run (export reads a RocksDB secondary instance or one PostgreSQL transaction,
// never writing the database), restores and moves into a new or empty database (import), and
// a consistency check. See README.md, "Backup and moving data".
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/commands.hpp"

namespace {

constexpr char kUsage[] =
    "usage: mosquitto-twins-admin COMMAND --db DIR|URI [OPTIONS]\n"
    "\n"
    "The twins plugin's database, outside the broker: a RocksDB directory (plugin_opt_db_path),\n"
    "or a PostgreSQL database (plugin_opt_store) given as a libpq URI, postgresql://USER@HOST/DB\n"
    "or postgres://..., whose schema twins (or --schema) holds the twins.\n"
    "\n"
    "commands:\n"
    "  export --db DIR [--out FILE|-]   every document and watch as JSON lines (default: stdout),\n"
    "                                   one moment of the database; safe while brokers use it,\n"
    "                                   never writes it\n"
    "  import --db DIR [--in FILE|-]    an export into a new or empty database (default: stdin);\n"
    "                                   versions and times kept; no broker may be using it\n"
    "  check --db DIR                   checks every record; safe while brokers use it\n"
    "  help, --help                     this text\n"
    "\n"
    "options:\n"
    "  --db URI                         a PostgreSQL database instead of DIR, for each command\n"
    "  --password-file FILE             with a URI: the password file (libpq's format, mode 0600),\n"
    "                                   as plugin_opt_store_password_file; without it libpq reads\n"
    "                                   PGPASSFILE or ~/.pgpass\n"
    "  --schema NAME                    with a URI: the schema holding the twins, as\n"
    "                                   plugin_opt_store_schema (default: twins)\n"
    "\n"
    "Exit status: 0 done, 1 refused or failed (the message says why), 2 bad usage.\n";

int Usage(const std::string& message) {
  std::cerr << "mosquitto-twins-admin: " << message << "\n" << kUsage;
  return 2;
}

int Run(const std::vector<std::string_view>& args) {
  if (args.empty()) return Usage("no command");
  const std::string_view command = args[0];
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return 0;
  }
  if (command != "export" && command != "import" && command != "check") {
    return Usage("unknown command \"" + std::string(command) + "\"");
  }
  std::optional<std::string> db, out, in, password_file, schema;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view flag = args[i];
    std::optional<std::string> value;
    const size_t equals = flag.find('=');
    if (flag.substr(0, 2) == "--" && equals != std::string_view::npos) {
      value = std::string(flag.substr(equals + 1));
      flag = flag.substr(0, equals);
    }
    std::optional<std::string>* target = nullptr;
    if (flag == "--db") {
      target = &db;
    } else if (flag == "--out" && command == "export") {
      target = &out;
    } else if (flag == "--in" && command == "import") {
      target = &in;
    } else if (flag == "--password-file") {
      target = &password_file;
    } else if (flag == "--schema") {
      target = &schema;
    } else if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      return Usage("unknown option \"" + std::string(flag) + "\" for " + std::string(command));
    }
    if (!value) {
      if (i + 1 == args.size()) return Usage(std::string(flag) + " needs a value");
      value = std::string(args[++i]);
    }
    if (value->empty()) return Usage(std::string(flag) + " needs a value");
    if (*target) return Usage(std::string(flag) + " given twice");
    *target = std::move(value);
  }
  if (!db) return Usage(std::string(command) + " needs --db DIR");
  for (const auto& [flag, value] : {std::pair("--password-file", &password_file), std::pair("--schema", &schema)}) {
    if (*value && !twins::admin::IsPostgresUri(*db)) {
      return Usage(std::string(flag) + " goes with a PostgreSQL URI (postgresql://...) as --db");
    }
  }
  const twins::admin::Target target{*db, password_file.value_or(""), schema.value_or("")};
  if (command == "export") return twins::admin::Export(target, out.value_or("-"));
  if (command == "import") return twins::admin::Import(target, in.value_or("-"));
  return twins::admin::Check(target);
}

}  // namespace

int twins::admin::Fail(const std::string& message) {
  std::cerr << "mosquitto-twins-admin: " << message << "\n";
  return 1;
}

int main(int argc, char** argv) {
  try {
    return Run(std::vector<std::string_view>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    return twins::admin::Fail(std::string("internal error: ") + e.what());
  }
}
