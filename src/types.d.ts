// Bun imports files `with { type: "text" }` as strings (drizzle/migrations.ts).
declare module "*.sql" {
  const text: string;
  export default text;
}
