/*
 * libFuzzer entry point for the sqlite3 amalgamation: runs the input as SQL against a fresh
 * in-memory database, with limits so that no single input runs away (in the spirit of
 * sqlite's own test/ossfuzz.c). Built by scripts/build-sqlite-target.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite3.h"

/* Stop an input after about 6,400 virtual-machine steps (checked every 64 opcodes): keeps exec/s high. */
#define MAX_PROGRESS_CALLS 100

static int progress(void *arg) {
  unsigned *calls = arg;
  return ++*calls > MAX_PROGRESS_CALLS;
}

static int ignore_row(void *arg, int n, char **values, char **names) {
  (void)arg;
  (void)n;
  (void)values;
  (void)names;
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
  sqlite3_initialize();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 64 * 1024) return 0;
  char *sql = malloc(size + 1);
  if (!sql) return 0;
  memcpy(sql, data, size);
  sql[size] = 0;

  sqlite3 *db;
  if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY, NULL) != SQLITE_OK) {
    free(sql);
    return 0;
  }
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 100000);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100000);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 100);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 50);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 10);
  sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 25000);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 10);
  unsigned calls = 0;
  sqlite3_progress_handler(db, 64, progress, &calls);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);

  char *err = NULL;
  sqlite3_exec(db, sql, ignore_row, NULL, &err);
  sqlite3_free(err);
  sqlite3_close(db);
  free(sql);
  return 0;
}
