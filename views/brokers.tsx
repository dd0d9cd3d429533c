/** @jsxImportSource hono/jsx */
/**
 * Which broker a record came from, where Crisper watches several (BROKERS):
 * a badge beside a task, worker, queue or alert, and a filter. BROKER_URL
 * alone names its one broker "default", which is never labelled: a lone
 * broker's pages look as they always did.
 */
import { DEFAULT_BROKER } from "../src/store/schema/columns.ts";

export function BrokerBadge(props: { name: string | undefined }) {
  if (!props.name || props.name === DEFAULT_BROKER) return null;
  return (
    <span class="broker" title={`broker ${props.name}`}>
      {props.name}
    </span>
  );
}

/** A broker select for a filter form; nothing when there is only one broker to choose. */
export function BrokerSelect(props: { brokers: readonly string[] | undefined; current: string | undefined }) {
  if (!props.brokers || props.brokers.length < 2) return null;
  return (
    <label>
      Broker
      <select name="broker">
        {["", ...props.brokers].map((b) => (
          <option value={b} selected={b === (props.current ?? "")}>
            {b || "any"}
          </option>
        ))}
      </select>
    </label>
  );
}

/** The same choice as links, for pages without a filter form (workers, queues). */
export function BrokerLinks(props: { brokers: readonly string[] | undefined; current: string | undefined; path: string }) {
  if (!props.brokers || props.brokers.length < 2) return null;
  const link = (b: string | undefined, text: string) =>
    b === props.current ? <strong>{text}</strong> : <a href={b ? `${props.path}?broker=${encodeURIComponent(b)}` : props.path}>{text}</a>;
  return (
    <p class="filters brokers">
      Broker: {link(undefined, "all")}
      {props.brokers.map((b) => (
        <> · {link(b, b)}</>
      ))}
    </p>
  );
}
