/**
 * A Celery broker URL for RabbitMQ, read by kombu's rules
 * (kombu/utils/url.py `url_to_parts`, and the transports' defaults):
 * - schemes `amqp://` and `pyamqp://` (plain) and `amqps://` (TLS; also
 *   `?ssl=1` on the others);
 * - the path after the host is the virtual host, URL-decoded, without its
 *   first slash: `amqp://h//` and `amqp://h/%2F` are "/", `amqp://h/prod`
 *   is "prod", `amqp://h//prod` is "/prod"; no path at all is "/";
 * - user, password and host default to guest, guest and localhost; the
 *   port to 5672 (5671 with TLS).
 */

export interface AmqpTarget {
  tls: boolean;
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  /** What may be printed: scheme, host, port and vhost, never the password. */
  display: string;
}

export const AMQP_SCHEMES = ["amqp:", "amqps:", "pyamqp:"] as const;

const TRUE = new Set(["1", "true", "yes", "on"]);

/** Parses a broker URL; throws a message naming what is wrong (never the password). */
export function parseAmqpUrl(url: string): AmqpTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error("not a URL (expected amqp://user:password@host:5672/vhost)");
  }
  const scheme = u.protocol.toLowerCase();
  if (!(AMQP_SCHEMES as readonly string[]).includes(scheme)) throw new Error(`expected amqp://, amqps:// or pyamqp://, got ${scheme}//`);
  const ssl = u.searchParams.get("ssl");
  const tls = scheme === "amqps:" || (ssl !== null && TRUE.has(ssl.toLowerCase()));
  const port = u.port === "" ? (tls ? 5671 : 5672) : Number(u.port);
  // WHATWG keeps a non-special scheme's path as written: "//" stays "//".
  const path = u.pathname.startsWith("/") ? u.pathname.slice(1) : u.pathname;
  let vhost: string;
  let username: string;
  let password: string;
  try {
    vhost = path === "" ? "/" : decodeURIComponent(path);
    username = u.username === "" ? "guest" : decodeURIComponent(u.username);
    password = u.password === "" ? "guest" : decodeURIComponent(u.password);
  } catch {
    throw new Error("bad %-escape in the URL's user, password or vhost");
  }
  // IPv6 literals come bracketed from URL; sockets want them bare.
  const hostname = u.hostname === "" ? "localhost" : u.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    tls,
    hostname,
    port,
    username,
    password,
    vhost,
    display: `${tls ? "amqps" : "amqp"}://${u.hostname || "localhost"}:${port}/${encodeURIComponent(vhost)}`,
  };
}
