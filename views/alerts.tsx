/** @jsxImportSource hono/jsx */
/** Alerts, open and resolved, filtered by status and kind through the query string. */
import { ALERT_STATUSES, type Alert } from "../src/api/schemas.ts";
import { ALERT_KINDS } from "../src/alerts/kinds.ts";
import { Alerts } from "./task.tsx";
import { BrokerSelect } from "./brokers.tsx";

export function AlertsPage(props: {
  alerts: Alert[];
  status: string;
  kind: string;
  now: number;
  requeue?: { token: string } | { unavailable: string };
  broker?: string;
  brokers?: readonly string[];
}) {
  return (
    <>
      <h1>Alerts</h1>
      <form class="filters" method="get" action="/alerts" hx-get="/alerts" hx-target="#main" hx-select="#main" hx-swap="outerHTML" hx-push-url="true">
        <label>
          Status
          <select name="status">
            {ALERT_STATUSES.map((s) => (
              <option value={s} selected={s === props.status}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Kind
          <select name="kind">
            {["", ...Object.keys(ALERT_KINDS)].map((k) => (
              <option value={k} selected={k === props.kind}>{k || "any"}</option>
            ))}
          </select>
        </label>
        <BrokerSelect brokers={props.brokers} current={props.broker} />
        <button type="submit">Show</button>
      </form>
      <div hx-ext="sse" sse-connect="/live">
        <div hx-get={`/alerts?status=${props.status}&kind=${props.kind}${props.broker ? `&broker=${encodeURIComponent(props.broker)}` : ""}`} hx-trigger="sse:alerts" hx-target="#main" hx-select="#main" hx-swap="outerHTML">
          {props.alerts.length ? <Alerts alerts={props.alerts} now={props.now} requeue={props.requeue} /> : <p class="muted">No {props.status === "all" ? "" : props.status} alerts.</p>}
        </div>
      </div>
    </>
  );
}
