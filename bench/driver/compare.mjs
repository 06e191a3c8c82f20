// bench/driver/compare.mjs: the table of bench/second-opinion. Reads pairs of results (a
// natter-bench JSON and a driver JSON per server and repetition) and prints, per server and
// figure, both values (the median over repetitions), their ratio (driver / natter-bench) and
// whether they agree within the tolerance (default 15%).
//
//   node bench/driver/compare.mjs [--tolerance 0.15] [--markdown] SERVER=BENCH.json,DRIVER.json ...
//
// A figure is "agree" when the ratio is within 1 +- tolerance. It is not judged ("n/a: ...")
// where one side could not reach it: a run that lost messages or failed connections gives no
// figures; a side that was its own bottleneck (natter-bench's bench_limited, the driver's
// driver_limited: CPU saturated or over 1% of sends 10 ms late) gives throughput but no latency
// or server CPU per delivery (a client that reads late changes how the server batches writes). Delivery checks (lost, duplicated, out of order)
// agree when both are zero. Exit status 0 always (the table is the result); 2 on bad input.

import { readFileSync } from 'node:fs';
import process from 'node:process';

function usage(problem) {
  console.error(`compare: ${problem}`);
  process.exit(2);
}

let tolerance = 0.15;
let markdown = false;
const pairs = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--tolerance') tolerance = Number(argv[++i]);
  else if (argv[i] === '--markdown') markdown = true;
  else {
    const m = /^([^=]+)=([^,]+),(.+)$/.exec(argv[i]);
    if (!m) usage(`expected SERVER=BENCH.json,DRIVER.json, got ${argv[i]}`);
    pairs.push({ server: m[1], bench: m[2], driver: m[3] });
  }
}
if (!(tolerance > 0)) usage('--tolerance must be > 0');

function load(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return { missing: `${path}: ${e.message}` };
  }
}

/** The figures natter-bench reports for a fanout or rooms run, and whether they stand. */
function benchFigures(r) {
  if (r.missing) return { missing: r.missing };
  const step = r.steps?.[0] ?? {};
  const s = r.summary ?? {};
  const checks = step.checks ?? {};
  return {
    'deliveries/s': s.deliveries_per_sec,
    'msg/s': s.msgs_per_sec,
    'p50 ms': s.latency?.p50_ms,
    'p99 ms': s.latency?.p99_ms,
    'server ns/delivery': s.server_cpu_ns_per_delivery,
    lost: step.lost,
    duplicated: checks.duplicates,
    'out of order': checks.out_of_order,
    'client CPU %': step.cpu ? step.cpu.bench_util * 100 : undefined,
    limited: s.bench_limited ? 'natter-bench was its own bottleneck' : '',
    noisy: Boolean(s.noisy),
    clean: (step.lost ?? 1) === 0 && (r.setup?.connections_failed ?? 1) === 0,
  };
}

function driverFigures(r) {
  if (r.missing) return { missing: r.missing };
  return {
    'deliveries/s': r.deliveries_per_sec,
    'msg/s': r.msgs_per_sec,
    'p50 ms': r.latency?.p50_ms,
    'p99 ms': r.latency?.p99_ms,
    'server ns/delivery': r.server_cpu_ns_per_delivery,
    lost: r.lost,
    duplicated: r.duplicated,
    'out of order': r.out_of_order,
    'client CPU %': r.driver_cpu_percent,
    limited: r.driver_limited ? 'the driver was its own bottleneck' : '',
    noisy: Boolean(r.noisy),
    clean: r.lost === 0 && r.setup?.connections_failed === 0,
  };
}

const RATES = ['deliveries/s', 'msg/s', 'p50 ms', 'p99 ms', 'server ns/delivery'];
const THROUGHPUT = ['deliveries/s', 'msg/s'];
const CHECKS = ['lost', 'duplicated', 'out of order'];

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function fmt(x) {
  if (x === undefined || x === null) return '-';
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

// Group the repetitions by server, in the order first seen.
const servers = new Map();
for (const p of pairs) {
  if (!servers.has(p.server)) servers.set(p.server, []);
  servers.get(p.server).push({ bench: benchFigures(load(p.bench)), driver: driverFigures(load(p.driver)) });
}

const rows = [];
let noisy = 0;
let runs = 0;
let agree = 0;
let disagree = 0;
for (const [server, reps] of servers) {
  const missing = reps.flatMap((r) => [r.bench.missing, r.driver.missing]).filter(Boolean);
  if (missing.length) {
    rows.push([server, 'all', '-', '-', '-', `n/a: no result (${missing[0]})`]);
    continue;
  }
  for (const r of reps) {
    runs += 2;
    noisy += Number(r.bench.noisy) + Number(r.driver.noisy);
  }
  const limited = reps.flatMap((r) => [r.bench.limited, r.driver.limited]).filter(Boolean);
  const unclean = reps.some((r) => !r.bench.clean || !r.driver.clean);
  for (const figure of [...RATES, ...CHECKS, 'client CPU %']) {
    const b = median(reps.map((r) => r.bench[figure]));
    const d = median(reps.map((r) => r.driver[figure]));
    let ratio = '-';
    let verdict;
    if (CHECKS.includes(figure)) {
      const sumB = reps.reduce((s, r) => s + (r.bench[figure] ?? 0), 0);
      const sumD = reps.reduce((s, r) => s + (r.driver[figure] ?? 0), 0);
      verdict = sumB === 0 && sumD === 0 ? 'agree' : 'DISAGREE';
    } else if (figure === 'client CPU %') {
      verdict = 'info (different clients)';
      if (b > 0 && d !== undefined) ratio = (d / b).toFixed(2);
    } else if (b === undefined || d === undefined || !(b > 0)) {
      verdict = 'n/a: not measured by both';
    } else {
      ratio = (d / b).toFixed(2);
      // Throughput is reached by any clean run; latency and the server's CPU per delivery
      // (its write batching follows how fast the client reads) only by an unhurried client.
      if (unclean) verdict = 'n/a: a run lost messages';
      else if (limited.length && !THROUGHPUT.includes(figure)) verdict = `n/a: ${limited[0]}`;
      else verdict = Math.abs(d / b - 1) <= tolerance ? 'agree' : 'DISAGREE';
    }
    if (verdict === 'agree' && !CHECKS.includes(figure)) agree++;
    if (verdict === 'DISAGREE' && !CHECKS.includes(figure)) disagree++;
    rows.push([server, figure, fmt(b), fmt(d), ratio, verdict]);
  }
}

const head = ['server', 'figure', 'natter-bench', 'driver', 'ratio', `within ${Math.round(tolerance * 100)}%`];
if (markdown) {
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map((_, i) => (i >= 2 && i <= 4 ? '---:' : '---')).join('|')}|`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} else {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i >= 2 && i <= 4 ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ').trimEnd();
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}
console.log(`\n${agree} figure(s) agree, ${disagree} disagree (median of ${Math.max(...[...servers.values()].map((r) => r.length), 0)} repetition(s) per server; ratio = driver / natter-bench)`);
if (noisy > 0) {
  console.log(`noisy: other work on the machine used more than a quarter of a core during ${noisy} of ${runs} runs`);
}
