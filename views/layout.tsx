/** @jsxImportSource hono/jsx */
/**
 * The page shell: navigation, styles, htmx and its SSE extension. Every page
 * renders whole without JavaScript; with it, hx-boost turns links and forms
 * into fragment swaps that push the URL.
 *
 * Nothing inline: styles and scripts are files under /assets/, so the
 * Content-Security-Policy (src/http/headers.ts) allows no inline script or
 * style at all. htmx is told (htmx-config) not to add its own <style>, and
 * never to evaluate code from attributes (hx-on, `js:`, trigger filters).
 */
import type { Child } from "hono/jsx";

/**
 * htmx's settings, read from a meta tag before it starts. Error answers are
 * swapped in like any other: they are pages that say what went wrong (a 503
 * while the database is down), and a click that shows nothing is worse.
 */
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[2345]..", swap: true },
  ],
});

const NAV = [
  ["/", "Overview"],
  ["/tasks", "Tasks"],
  ["/task-names", "Task names"],
  ["/workers", "Workers"],
  ["/queues", "Queues"],
  ["/schedules", "Schedules"],
  ["/alerts", "Alerts"],
  ["/broker", "Broker"],
] as const;

/** The pages' stylesheet, served at STYLESHEET_PATH. */
export const CSS = `
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f8f9fb; --card:#fff; --accent:#2f5bd3;
  --ok:#137a3f; --fail:#b42318; --warn:#b54708; --run:#175cd3; --idle:#667085; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:24px; align-items:center; padding:10px 24px; background:#101828; color:#fff; }
header .brand { font-weight:700; letter-spacing:.3px; }
header a { color:#d0d5dd; text-decoration:none; } header a.here, header a:hover { color:#fff; }
main { padding:20px 24px; max-width:1280px; }
h1 { font-size:20px; margin:0 0 14px; } h2 { font-size:15px; margin:22px 0 8px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; margin-bottom:16px; }
table { width:100%; border-collapse:collapse; background:var(--card); }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.4px; color:var(--muted); font-weight:600; }
td.mono, .mono, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size:12.5px; }
pre { white-space:pre-wrap; word-break:break-word; background:#0f1420; color:#e6e8ee; padding:12px; border-radius:6px; margin:0; }
a { color:var(--accent); }
.muted { color:var(--muted); }
.state { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
.state.SUCCESS { background:var(--ok); } .state.FAILURE, .state.REJECTED { background:var(--fail); }
.state.STARTED, .state.RECEIVED { background:var(--run); } .state.RETRY { background:var(--warn); }
.state.REVOKED { background:#475467; } .state.PENDING { background:var(--idle); }
.sev.critical { color:var(--fail); font-weight:600; } .sev.warning { color:var(--warn); font-weight:600; }
form.filters { display:flex; flex-wrap:wrap; gap:8px; align-items:end; margin-bottom:14px; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:2px; }
input, select, button { font:inherit; padding:5px 8px; border:1px solid #d0d5dd; border-radius:6px; background:#fff; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
button.danger { background:#b42318; border-color:#b42318; }
header .who { margin-left:auto; color:#d0d5dd; font-size:13px; }
.flash { background:#ecfdf3; border:1px solid #abefc6; color:#05603a; padding:8px 12px; border-radius:8px; margin:0 0 12px; }
.health { display:flex; flex-direction:column; gap:2px; border-left:4px solid #12b76a; margin-bottom:14px; }
.health.warn { border-left-color:#f79009; } .health.bad { border-left-color:#d92d20; }
.health span { color:#475467; font-size:13px; }
figure.chart { margin:0 0 8px; } figure.chart svg { max-width:100%; height:auto; }
figcaption .key { margin-right:14px; font-size:12px; color:#475467; }
figcaption .key svg { margin-right:2px; vertical-align:-1px; }
form.revoke { display:flex; gap:12px; align-items:center; flex-wrap:wrap; }
form.requeue { margin-top:6px; } .retried-as div { margin-bottom:2px; }
dl.facts { display:grid; grid-template-columns: 150px 1fr; gap:6px 12px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; word-break:break-word; }
.grid { display:grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap:12px; }
.stat .n { font-size:24px; font-weight:700; } .stat .l { color:var(--muted); font-size:12px; }
.live { font-size:12px; color:var(--muted); }
.card h2:first-child { margin-top:0; }
.problem { border-left:4px solid #d92d20; } .problem.s400 { border-left-color:#f79009; }
.problem p { margin:0 0 8px; } .problem p:last-child { margin-bottom:0; }
.mark { display:inline-block; padding:0 7px; border-radius:9px; font-size:11px; font-weight:700; text-transform:uppercase; color:#fff; }
.mark.risk { background:var(--fail); } .mark.advice { background:var(--warn); }
.finding { border-left:4px solid var(--warn); } .finding.risk { border-left-color:var(--fail); }
.finding p { margin:0 0 8px; }
tr.risk td { background:#fef3f2; } tr.advice td { background:#fffaeb; }
.reason { font-size:12px; color:#475467; } .reason-note { border-left:4px solid #475467; } .broker-alerts { margin-bottom:16px; }
.windows { display:flex; gap:12px; margin:0 0 12px; } th a { color:inherit; text-decoration:none; } th[aria-sort] a { color:var(--fg); }
td.bad { color:var(--fail); font-weight:600; } svg.spark { display:block; }
h1 a { color:inherit; text-decoration-color:#d0d5dd; } h1 a:hover { color:var(--accent); }
.banner { background:#fef0c7; color:#7a2e0e; border-bottom:1px solid #fedf89; padding:8px 24px; font-weight:600; }
.banner span { font-weight:400; }
.nobroker code { background:#f2f4f7; padding:1px 5px; border-radius:4px; }
.broker { display:inline-block; margin-left:6px; padding:0 6px; border-radius:8px; background:#eef2ff; color:#3538cd; font-size:11px; font-weight:600; vertical-align:middle; }
`;

/**
 * A line every page shows under the navigation: "demo data" in `crisper
 * demo`. One web app per process sets it (src/web/app.ts), so every page,
 * those added later included, carries it without being told.
 */
let siteBanner: { title: string; text: string } | null = null;
export function setSiteBanner(banner: { title: string; text: string } | null) {
  siteBanner = banner;
}

/** Versioned by its content, so a browser that kept an older one (assets are cached for a day) fetches the new one. */
export const STYLESHEET_PATH = `/assets/crisper.css?v=${new Bun.CryptoHasher("sha256").update(CSS).digest("hex").slice(0, 12)}`;

export function Layout(props: {
  title: string;
  path: string;
  user?: { name: string; role: string } | null;
  /** Reload the page every so many seconds (the 503 page, until the database answers). */
  refreshS?: number;
  children: Child;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · Crisper</title>
        <link rel="icon" href="data:," />
        {props.refreshS ? <meta http-equiv="refresh" content={String(props.refreshS)} /> : null}
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <link rel="stylesheet" href={STYLESHEET_PATH} />
        <script src="/assets/htmx.min.js" defer></script>
        <script src="/assets/sse.min.js" defer></script>
      </head>
      <body hx-boost="true">
        <header>
          <span class="brand">Crisper</span>
          {NAV.map(([href, label]) => (
            <a href={href} class={props.path === href || (href !== "/" && props.path.startsWith(href)) ? "here" : ""}>
              {label}
            </a>
          ))}
          {props.user?.role === "admin" ? (
            <a href="/audit" class={props.path === "/audit" ? "here" : ""}>
              Audit
            </a>
          ) : null}
          {props.user ? (
            <span class="who">
              {props.user.name} · {props.user.role}
            </span>
          ) : null}
        </header>
        {siteBanner ? (
          <div class="banner" role="status">
            {siteBanner.title} <span>{siteBanner.text}</span>
          </div>
        ) : null}
        <main id="main">{props.children}</main>
      </body>
    </html>
  );
}
