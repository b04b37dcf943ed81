#include "admin/target.hpp"

#include "store/postgres_snapshot.hpp"

namespace twins::admin {

bool IsPostgresUri(std::string_view db) {
  return db.substr(0, 13) == "postgresql://" || db.substr(0, 11) == "postgres://";
}

bool Target::postgres() const { return IsPostgresUri(db); }

PostgresOptions Target::postgres_options() const {
  PostgresOptions options;
  options.uri = db;
  options.password_file = password_file;
  if (!schema.empty()) options.schema = schema;
  return options;
}

std::string Target::name() const {
  return postgres() ? "the PostgreSQL schema " + postgres_options().schema : "the database at " + db;
}

Result<std::unique_ptr<StoreSnapshot>> OpenSnapshot(const Target& target) {
  return target.postgres() ? OpenPostgresSnapshot(target.postgres_options()) : OpenRocksDbSnapshot(target.db);
}

}  // namespace twins::admin
