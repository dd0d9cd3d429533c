/**
 * Slack's mrkdwn, made safe for what a task carries. Args, results, names and
 * hostnames are attacker-controlled: in Slack, `<!channel>` pings everyone
 * and `<https://evil|click here>` is a disguised link, so `&`, `<` and `>`
 * are escaped (Slack's own rule) and every piece is cut to a bound.
 */

/** Escapes text for mrkdwn and cuts it to `max` characters. */
export function esc(text: string, max = 300): string {
  const cut = text.length > max ? `${text.slice(0, max - 1)}…` : text;
  return cut.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * Inline code: escaped, on one line, and without backticks, which would end
 * the code span and let the rest be read as formatting.
 */
export function code(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, " ").replaceAll("`", "ˋ");
  return `\`${esc(flat, max)}\``;
}

/** A link; the label is escaped, the URL is ours (built from PUBLIC_URL and encoded parts). */
export function link(url: string, label: string, max = 120): string {
  return `<${url}|${esc(label, max).replaceAll("|", "¦")}>`;
}

/**
 * A time Slack shows in each reader's own timezone and locale, with the ISO
 * time as the fallback for clients that cannot.
 */
export function when(iso: string | null): string {
  if (!iso) return "—";
  const unix = Math.floor(Date.parse(iso) / 1000);
  return `<!date^${unix}^{date_short_pretty} {time_secs}|${iso}>`;
}

/** Block Kit caps: a section's text at 3000 characters, its fields at 2000. */
export function bound(text: string, max = 2900): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
