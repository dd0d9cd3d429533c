/**
 * Writes src/store/pglite-seed.tar.gz: an embedded database's data directory
 * right after initdb (PGlite's own, with the settings Crisper runs it with),
 * before any migration. A first start unpacks it instead of running initdb,
 * whose second PostgreSQL instance costs the process about 800 MB of memory
 * once (README, Benchmarks). Run it again after upgrading PGlite:
 *   bun scripts/make-pglite-seed.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";

const dir = mkdtempSync(join(tmpdir(), "crisper-pglite-seed-"));
const dataDir = join(dir, "pgdata");
const db = await PGlite.create({ dataDir });
await db.query("checkpoint");
await db.close();
const out = join(import.meta.dir, "../src/store/pglite-seed.tar.gz");
// Plain ustar, owner and times fixed: the same PGlite gives the same bytes.
const tar = Bun.spawnSync(["tar", "--format=ustar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-czf", out, "-C", dataDir, "."]);
if (tar.exitCode !== 0) throw new Error(`tar failed: ${tar.stderr.toString()}`);
rmSync(dir, { recursive: true, force: true });
console.log(`wrote ${out} (${Bun.file(out).size} bytes)`);
