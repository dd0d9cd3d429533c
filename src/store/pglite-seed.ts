/**
 * The embedded database's first start without initdb: its data directory,
 * as initdb leaves it, ships with Crisper (pglite-seed.tar.gz, made by
 * scripts/make-pglite-seed.ts) and is unpacked here. initdb would run a
 * second PostgreSQL inside this process and take it to about 1 GB of memory
 * once; unpacking costs what the archive holds (40 MB, 4.5 MB packed).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import seed from "./pglite-seed.tar.gz" with { type: "file" };

const BLOCK = 512;

/** Unpacks the seed into `dataDir` (which must hold no database yet). */
export async function unpackSeed(dataDir: string): Promise<void> {
  const tar = Bun.gunzipSync(new Uint8Array(await Bun.file(seed).arrayBuffer()));
  for (const entry of ustarEntries(tar)) {
    const path = normalize(join(dataDir, entry.name));
    // Our own archive, but a path out of the data directory is refused all the same.
    if (!path.startsWith(normalize(dataDir))) throw new Error(`the PGlite seed holds a path outside its directory: ${entry.name}`);
    if (entry.type === "directory") mkdirSync(path, { recursive: true });
    else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, entry.data);
    }
  }
}

interface Entry {
  name: string;
  type: "file" | "directory";
  data: Uint8Array;
}

/** The entries of a POSIX ustar archive (as `tar --format=ustar` writes): regular files and directories. */
function* ustarEntries(tar: Uint8Array): Generator<Entry> {
  const text = (from: number, length: number) => {
    const field = tar.subarray(from, from + length);
    const end = field.indexOf(0);
    return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
  };
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const name = text(at, 100);
    if (name === "") return; // the two zero blocks that end an archive
    const size = Number.parseInt(text(at + 124, 12).trim() || "0", 8);
    const flag = String.fromCharCode(tar[at + 156] ?? 0);
    const prefix = text(at + 345, 155);
    const full = prefix ? `${prefix}/${name}` : name;
    const data = tar.subarray(at + BLOCK, at + BLOCK + size);
    if (flag === "5") yield { name: full, type: "directory", data };
    else if (flag === "0" || flag === "\0") yield { name: full, type: "file", data };
    else throw new Error(`the PGlite seed holds an entry of type ${JSON.stringify(flag)}: ${full}`);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
}
