// Bun imports files `with { type: "text" }` as strings (drizzle/migrations.ts).
declare module "*.sql" {
  const text: string;
  export default text;
}

// …and other files `with { type: "file" }` as their path (embedded in a compiled binary).
declare module "*.wasm" {
  const path: string;
  export default path;
}
declare module "*.data" {
  const path: string;
  export default path;
}
declare module "*.min.js" {
  const path: string;
  export default path;
}

// The embedded database's data directory as initdb leaves it (store/pglite-seed.ts).
declare module "*.tar.gz" {
  const path: string;
  export default path;
}
