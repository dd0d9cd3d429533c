/**
 * config_risk: a live worker's settings will duplicate or lose work (the
 * rules: config-findings.ts). Each pass judges the online workers whose
 * configuration was read since they came online (read-config.ts), stores
 * their findings (risks and advice) for the pages and the API, and keeps one
 * alert per risky worker. A worker that is away keeps its alert until it is
 * back with other settings, or forgotten: a restart is not a resolution.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { canonicalJson } from "../../alerts/store.ts";
import { workerLiveness } from "../../state/worker.ts";
import { listWorkerConfigs, saveConfigFindings, workerRuntimes } from "../../store/queries/worker-config.ts";
import { type ConfigFinding, configFindings, type NameRuntime, redeliveryLimitOf } from "../config-findings.ts";
import type { Check } from "../pass.ts";

/**
 * A worker's runtimes are read again once its work changed — its
 * heartbeats' `processed` (counted when a task starts) or the number of
 * tasks it holds unfinished (falls when one ends) — at most every
 * RUNTIMES_MIN_AGE_S, and at least every RUNTIMES_MAX_AGE_S: the query
 * reads up to 1000 rows.
 */
const RUNTIMES_MIN_AGE_S = 10;
const RUNTIMES_MAX_AGE_S = 300;

export function configRiskAlert(hostname: string, findings: readonly ConfigFinding[]): AlertSpec | null {
  const risks = findings.filter((f) => f.level === "risk");
  if (!risks.length) return null;
  const settings = [...new Set(risks.flatMap((f) => f.settings.map((s) => `${s.name}=${s.value}`)))];
  return {
    kind: "config_risk",
    subject: hostname,
    summary: `Worker ${hostname}'s settings will duplicate or lose work: ${risks.map((f) => f.problem).join(" ")} Fix: ${risks.map((f) => f.fix).join(" ")}`,
    details: {
      hostname,
      settings,
      findings: risks.map((f) => ({ rule: f.rule, settings: f.settings, problem: f.problem, fix: f.fix, ...(f.tasks ? { tasks: f.tasks } : {}) })),
    },
  };
}

/** The check, with its memory of runtimes between passes. */
export function createConfigRiskCheck(): Check {
  const runtimes = new Map<string, { at: number; work: string; list: NameRuntime[] }>();
  return async (pass) => {
    const { database, now } = pass;
    const rows = new Map((await listWorkerConfigs(database)).map((r) => [r.hostname, r]));
    const holding: AlertSpec[] = [];
    const unfinished = Map.groupBy(pass.unfinished, (t) => t.worker ?? "");
    const unjudged: string[] = [];
    for (const w of pass.workers) {
      const live = workerLiveness({ lastHeartbeatAt: w.lastHeartbeatAt, freq: w.freq, offlineAt: w.offlineAt }, pass.asOf);
      const row = rows.get(w.hostname);
      // Read since it came online: otherwise what is stored may be another run's settings.
      const current = row && (w.onlineAt === null || row.readAt.getTime() / 1000 >= w.onlineAt);
      if (live.status !== "online" || !row || !current) {
        const lastSign = w.lastHeartbeatAt ?? w.offlineAt ?? 0;
        if (pass.asOf - lastSign < pass.config.workerForgetAfterS) unjudged.push(w.hostname);
        continue;
      }
      const config = row.config;
      const limit = redeliveryLimitOf(config, pass.config);
      // Runtimes matter only where some task acknowledges late.
      let observed: NameRuntime[] = [];
      if (config.task_acks_late === true || config.tasks.some((t) => t.acks_late === true)) {
        const cached = runtimes.get(w.hostname);
        const work = `${w.processed}/${unfinished.get(w.hostname)?.length ?? 0}`;
        const age = cached ? now - cached.at : Number.POSITIVE_INFINITY;
        if (cached && (age < RUNTIMES_MIN_AGE_S || (age < RUNTIMES_MAX_AGE_S && cached.work === work))) observed = cached.list;
        else {
          observed = await workerRuntimes(database, w.hostname);
          runtimes.set(w.hostname, { at: now, work, list: observed });
        }
      }
      const findings = configFindings(config, limit, observed);
      if (canonicalJson(findings) !== canonicalJson(row.findings) || !row.findingsAt) await saveConfigFindings(database, w.hostname, findings, new Date(now * 1000));
      const alert = configRiskAlert(w.hostname, findings);
      if (alert) holding.push(alert);
    }
    for (const h of runtimes.keys()) if (!rows.has(h)) runtimes.delete(h);
    await pass.sync("config_risk", holding, { leaveOpen: unjudged });
  };
}
