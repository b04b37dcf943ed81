#!/usr/bin/env bash
# The code's shape, checked: data flows broker -> plugin/ (or HTTP -> rest/) -> engine/ -> store/,
# and includes say so. Fails naming every include that breaks a rule:
# - every quoted include names its module from the repository root ("engine/engine.hpp");
# - a module includes only the modules below it (common/ is below everything);
# - headers private to a library are included only inside it (and by its tests, fuzz, bench).
set -euo pipefail
cd "$(dirname "$0")/.."
failed=0
fail() { echo "layout: $*"; failed=1; }

# module: the modules its sources may include besides itself and common/.
declare -A allowed=(
  [common]=""
  [store]=""
  [engine]="store"
  [metrics]="engine store"
  [tsdb]="engine store"
  [rest]="engine store metrics"
  [plugin]="engine store metrics rest tsdb cluster"
  [admin]="engine store"
  [cluster]="engine store"
)
# private header: the only module that may include it (tests, fuzz and bench may too).
declare -A private=(
  [engine/merge.hpp]=engine
  [engine/config_cache.hpp]=engine
  [store/free_space.hpp]=store
  [store/rocksdb_layout.hpp]=store
  [store/rocksdb_store.hpp]=store
  [store/postgres_sql.hpp]=store
  [store/postgres_connection.hpp]=store
)

while IFS= read -r -d '' file; do
  module=${file%%/*}
  while IFS= read -r include; do
    [[ $include == */* ]] || { fail "$file: bare include \"$include\""; continue; }
    target=${include%%/*}
    case $target in common|engine|store|cluster|metrics|tsdb|rest|plugin|admin|tests|fuzz|bench) ;;
      *) fail "$file: \"$include\" does not start with a module"; continue ;;
    esac
    owner=${private[$include]:-}
    if [[ -n $owner && $module != "$owner" && $module != tests && $module != fuzz && $module != bench ]]; then
      fail "$file: \"$include\" is private to $owner/"
    fi
    [[ -v allowed[$module] ]] || continue  # tests, fuzz, bench may include anything
    [[ $target == "$module" || $target == common ]] && continue
    [[ " ${allowed[$module]} " == *" $target "* ]] || fail "$file: $module/ may not include $target/ (\"$include\")"
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
done < <(find common store engine cluster metrics tsdb rest plugin admin tests fuzz bench -name node_modules -prune -o \
           -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.c' -o -name '*.h' \) -print0)
exit $failed
