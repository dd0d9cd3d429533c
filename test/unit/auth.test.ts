/** CRISPER_AUTH's format, and the one-line errors a bad value gives. */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config.ts";
import { parseAuth } from "../../src/auth/users.ts";

describe("CRISPER_AUTH", () => {
  test("role:user:secret entries; the secret may hold colons and be a hash", () => {
    expect(parseAuth("admin:alice:pw viewer:bob:a:b:c\n viewer:carol:$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA")).toEqual([
      { role: "admin", name: "alice", secret: "pw" },
      { role: "viewer", name: "bob", secret: "a:b:c" },
      { role: "viewer", name: "carol", secret: "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA" },
    ]);
  });
  test("a bad value stops Crisper with one line that never shows a password", () => {
    const r = parseConfig({ CRISPER_AUTH: "root:alice:hunter2" });
    expect("error" in r && r.error).toBe('CRISPER_AUTH: expected role:user:password entries (role viewer or admin) separated by spaces, got "root:alice"…');
    expect(JSON.stringify(r)).not.toContain("hunter2");
    const twice = parseConfig({ CRISPER_AUTH: "admin:a:x viewer:a:y" });
    expect("error" in twice && twice.error).toBe('CRISPER_AUTH: user "a" appears twice');
  });
  test("Slack's token and signing secret go together", () => {
    const r = parseConfig({ SLACK_BOT_TOKEN: "xoxb-secret-token" });
    expect("error" in r && r.error).toContain("SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN");
    expect(JSON.stringify(r)).not.toContain("xoxb-secret-token");
  });
});
