/** Synthetic history for the page benchmarks, written straight in SQL. */
import type postgres from "postgres";

/** Added even when the store already holds `target` (earlier phases' tasks never fail): the pages need failures. */
const AT_LEAST = 20_000;

/**
 * Tops the store up to `target` tasks (four events each; at least AT_LEAST
 * more) straight in SQL, spread over the last 24 hours like steady traffic:
 * 5 % failures with tracebacks, 50 task names, 8 workers, two queues. Returns
 * how many were added.
 */
export async function fillTasks(pg: postgres.Sql, target: number, log: (s: string) => void): Promise<number> {
  const { n } = (await pg<{ n: string }[]>`select count(*) as n from tasks`)[0] as { n: string };
  const have = Number(n);
  const missing = Math.max(AT_LEAST, target - have);
  const total = have + missing;
  const chunk = 100_000;
  for (let from = 0; from < missing; from += chunk) {
    const to = Math.min(missing, from + chunk);
    const range = `generate_series(${have + from + 1}, ${have + to}) g`;
    await pg.unsafe(`
      insert into tasks (id, name, args, kwargs, queue, routing_key, state, state_key, worker, result, runtime,
                         exception, traceback, retries, sent_at, received_at, started_at, finished_at, first_seen_at, last_event_at)
      select 'bench-' || g, 'app.tasks.job' || (g % 50), '(' || g || ', ''customer-' || (g % 9973) || ''')', '{"region": "eu"}',
             case when g % 10 = 0 then 'reports' else 'celery' end, 'celery',
             case when g % 20 = 0 then 'FAILURE' else 'SUCCESS' end, 0, 'w' || (g % 8) || '@bench',
             case when g % 20 = 0 then null else '"ok"' end, 0.2,
             case when g % 20 = 0 then 'ValueError(''card declined for customer-' || (g % 9973) || ''')' end,
             case when g % 20 = 0 then repeat('  File "app/tasks.py", line 12, in job' || chr(10), 20) end, 0,
             t, t + interval '5 ms', t + interval '10 ms', t + interval '210 ms', t, t + interval '210 ms'
      from (select g, now() - (${total} - g) * (interval '86400 s' / ${total}) as t from ${range}) s
      on conflict do nothing`);
    await pg.unsafe(`
      insert into events (task_id, key, type, hostname, timestamp, local_received, fields)
      select 'bench-' || g, e.k, e.type::task_event_type, 'w' || (g % 8) || '@bench', now(), now(), '{"pid": 4242}'
      from ${range}, (values (1, 'task-sent'), (2, 'task-received'), (3, 'task-started'), (4, 'task-succeeded')) e(k, type)
      on conflict do nothing`);
    log(`history: ${(have + to).toLocaleString("en-US")} tasks stored`);
  }
  await pg.unsafe("analyze tasks; analyze events");
  return Math.max(0, missing);
}


/**
 * Adds `n` tasks (four events each) straight in SQL for the retention
 * benchmark: the first half last heard of before `retentionS` ago (spread
 * over the ten days before that), the second half within it.
 */
export async function fillAgedTasks(pg: postgres.Sql, n: number, retentionS: number, log: (s: string) => void): Promise<void> {
  const chunk = 250_000;
  const t0 = performance.now();
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk);
    const range = `generate_series(${from + 1}, ${to}) g`;
    // Old: retention + 1 day + up to 10 days ago; new: up to 10 days ago.
    const age = `case when g <= ${Math.floor(n / 2)} then ${retentionS + 86_400} + (g % 864000) else (g % 864000) end`;
    await pg.unsafe(`
      insert into tasks (id, name, args, kwargs, queue, routing_key, state, state_key, worker, result, runtime,
                         retries, sent_at, received_at, started_at, finished_at, first_seen_at, last_event_at)
      select 'aged-' || g, 'app.tasks.job' || (g % 50), '(' || g || ', ''customer-' || (g % 9973) || ''')', '{"region": "eu"}',
             'celery', 'celery', 'SUCCESS', 0, 'w' || (g % 8) || '@bench', '"ok"', 0.2, 0,
             t, t, t, t + interval '200 ms', t, t + interval '200 ms'
      from (select g, now() - (${age}) * interval '1 s' as t from ${range}) s
      on conflict do nothing`);
    await pg.unsafe(`
      insert into events (task_id, key, type, hostname, timestamp, local_received, fields)
      select 'aged-' || g, e.k, e.type::task_event_type, 'w' || (g % 8) || '@bench', now(), now(), '{"pid": 4242}'
      from ${range}, (values (1, 'task-sent'), (2, 'task-received'), (3, 'task-started'), (4, 'task-succeeded')) e(k, type)`);
    log(`retention: ${to.toLocaleString("en-US")} of ${n.toLocaleString("en-US")} tasks filled (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await pg.unsafe("analyze tasks; analyze events");
}
