/** @jsxImportSource hono/jsx */
/** Small pieces every page shares: states in one set of colours, times relative with the absolute on hover. */
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

export function ago(s: number): string {
  const future = s < 0;
  const a = Math.abs(s);
  const text = a < 1 ? "now" : a < 60 ? `${Math.round(a)} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${(a / 3600).toFixed(1)} h` : `${(a / 86400).toFixed(1)} d`;
  return text === "now" ? text : future ? `in ${text}` : `${text} ago`;
}

export function duration(from: string | null, to: string | null): string | null {
  if (!from || !to) return null;
  return seconds((Date.parse(to) - Date.parse(from)) / 1000);
}

/** A length of time in the unit a person reads at a glance: 4 ms, 2.5 s, 3.2 min. */
export function seconds(s: number): string {
  if (s > 0 && s < 0.0005) return "< 1 ms";
  return s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`;
}
