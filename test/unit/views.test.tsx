/** @jsxImportSource hono/jsx */
/** Views render as plain functions: the queue chart, and hostile text escaped. */
import { describe, expect, test } from "bun:test";
import { DepthChart } from "../../views/queues.tsx";
import { WorkerPage } from "../../views/workers.tsx";

describe("views", () => {
  test("the depth chart draws one point per sample, scaled to the largest", () => {
    const svg = String(<DepthChart points={[0, 5, 10, 4].map((depth, i) => ({ at: 1_800_000_000 + i * 60, depth }))} />);
    expect(svg).toContain("<svg");
    expect((svg.match(/[ML]\d/g) ?? []).length).toBe(4);
    expect(svg).toContain(">10</text>");
    expect(String(<DepthChart points={[{ at: 1, depth: 1 }]} />)).toContain("Not enough samples");
  });

  test("a worker's hostname and its tasks' names are escaped", () => {
    const w = {
      hostname: `<script>alert(1)</script>@lab`,
      status: "online",
      offline_reason: null,
      last_heartbeat_at: null,
      freq_s: 2,
      active: 0,
      processed: 0,
      reserved: 1,
      loadavg: null,
      pid: 1,
      sw_ident: null,
      sw_ver: null,
      sw_sys: null,
      online_since: null,
      offline_at: null,
      first_seen_at: null,
      inspected_at: null,
      reserved_tasks: [{ id: `"><img src=x onerror=alert(2)>`, name: "<b>x</b>" }],
      active_tasks: [],
    } as any;
    const html = String(<WorkerPage w={w} alerts={[]} now={1_800_000_000} />);
    expect(html).not.toContain("<script>alert(1)");
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;@lab");
    expect(html).toContain("&lt;b&gt;x&lt;/b&gt;");
  });
});
