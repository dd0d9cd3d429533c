/** The store on embedded PGlite, for tests that need no servers. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";

export interface TestStore {
  database: Database;
  /** The data directory (DATA_DIR): opening it again finds the same store. */
  dir: string;
  /** Closes the database and deletes the directory. */
  remove(): Promise<void>;
}

/** An empty, migrated store in a new temporary directory named after `name`. */
export async function emptyStore(name: string): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), `crisper-${name}-`));
  const database = await openDatabase({ dataDir: dir });
  await migrate(database);
  return {
    database,
    dir,
    async remove() {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
