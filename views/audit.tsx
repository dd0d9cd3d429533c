/** @jsxImportSource hono/jsx */
/** The audit of control actions (admins only): who did what, to what, when, from where, and how it ended. */
import type { AuditEntry } from "../src/api/schemas.ts";
import { When } from "./format.tsx";

/** The detail's gist in one line: counts and ids, or the reason it was refused. */
function gist(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .filter(([, v]) => v !== null && !(Array.isArray(v) && v.length === 0))
    // Lists of records (a bulk retry's) as counts; the ids and the reasons are in GET /api/audit.
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : Array.isArray(v) && v.some((x) => typeof x === "object") ? `${v.length}` : JSON.stringify(v)}`)
    .join("; ")
    .slice(0, 600);
}

export function AuditPage(props: { entries: AuditEntry[]; now: number }) {
  return (
    <>
      <h1>Audit</h1>
      <p class="muted">Every control action an admin asked for, done or refused. Kept apart from the tasks, past TASK_RETENTION.</p>
      {props.entries.length ? (
        <table class="audit">
          <thead>
            <tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Outcome</th><th>Detail</th><th>From</th></tr>
          </thead>
          <tbody>
            {props.entries.map((e) => (
              <tr>
                <td><When iso={e.at} now={props.now} /></td>
                <td>{e.actor}</td>
                <td class="mono">{e.action}</td>
                <td class="mono">{e.target}</td>
                <td class={e.outcome === "ok" ? "" : "sev warning"}>{e.outcome} ({e.status})</td>
                <td class="muted">{gist(e.detail)}</td>
                <td class="mono muted">{e.ip ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">No control action yet.</p>
      )}
    </>
  );
}
