/** @jsxImportSource hono/jsx */
/** Small pieces every page shares: states in one set of colours, times relative with the absolute on hover. */
import { ago, REVOKED_REASON_TEXT } from "../src/format.ts";

export function State(props: { state: string }) {
  return <span class={`state ${props.state.replace(/[^A-Z]/g, "")}`}>{props.state}</span>;
}

/** "12 s ago", with the ISO time on hover; `now` is injected so a render is a pure function. */
export function When(props: { iso: string | null; now: number }) {
  if (!props.iso) return <span class="muted">—</span>;
  const t = Date.parse(props.iso) / 1000;
  return (
    <time datetime={props.iso} title={props.iso}>
      {ago(props.now - t)}
    </time>
  );
}


/** Why a REVOKED task was revoked, where Celery says (nothing otherwise). */
export function RevokedReason(props: { reason: "expired" | null }) {
  if (!props.reason) return null;
  return <span class="reason">{REVOKED_REASON_TEXT[props.reason]}</span>;
}

/** A chart's legend: a coloured square and a name for each series, as [name, colour]. */
export function ChartKey(props: { items: [string, string][] }) {
  return (
    <figcaption>
      {props.items.map(([name, colour]) => (
        <span class="key">
          <svg width="10" height="10" aria-hidden="true">
            <rect width="10" height="10" rx="2" fill={colour} />
          </svg>{" "}
          {name}
        </span>
      ))}
    </figcaption>
  );
}
