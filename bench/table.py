#!/usr/bin/env python3
"""The table bench/run.sh prints: the median of each measure over its runs, with the range, the
ratios to bare actix-web and to the durable limit, and each target with the runs that met it.

    table.py RUNS BINARY_MIB CONNS DURATION PIN measures1.txt [measures2.txt …]

Each measures file holds "name value" lines from one run.
"""

import os
import statistics
import sys

runs, binary_mib, conns, duration, pin = sys.argv[1:6]
files = sys.argv[6:]
data = {}
for path in files:
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            # A measure the run could not take (its tool printed nothing) counts as missing.
            value = float(parts[1]) if len(parts) == 2 else float("nan")
            data.setdefault(parts[0], []).append(value)


def stat(name, unit="", digits=1):
    """`median (min–max)` of a measure, or the one value for a single run."""
    v = [x for x in data[name] if x == x]
    if not v:
        return "n/a"
    fmt = lambda x: f"{x:,.{digits}f}{unit}"
    if len(v) == 1:
        return fmt(v[0])
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}–{fmt(max(v))})"


def met(name, ok):
    v = data[name]
    n = sum(1 for x in v if x == x and ok(x))
    if n == len(v):
        return f"met in every run ({n} of {len(v)})"
    return f"NOT met: met in {n} of {len(v)} runs"


cpu = ""
with open("/proc/cpuinfo", encoding="utf-8") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
print(f"machine: {os.cpu_count()} cores, {cpu}, {os.uname().sysname} {os.uname().release}")
placement = "server pinned to core 0, load to core 1" if pin == "1" else "no pinning"
print(f"load: wrk -t1 -c{conns} -d{duration}, {placement}; {len(files)} run(s): median (min–max)")
print()
print("| measure | result | vs bare | vs durable limit |")
print("|---|---|---|---|")
print(f"| bare actix-web JSON handler | {stat('bare_rps', ' req/s', 0)}, CPU {stat('bare_cpu', ' µs/req')} | 100% | |")
print(
    f"| durable limit: one group-committed insert of a request row + audit row, WAL, synchronous=FULL | "
    f"{stat('durable_rps', ' req/s', 0)}, p99 {stat('durable_p99', ' ms', 2)}, CPU {stat('durable_cpu', ' µs/req')}, rows {stat('durable_row_bytes', ' B', 0)}/request "
    f"(agent-otp's: {stat('auto_row_bytes', ' B', 0)}) | {stat('durable_vs_bare', '%')} | 100% |"
)
print(
    f"| auto-approve round trip (request → 201 + token, durable commit) | {stat('auto_rps', ' req/s', 0)}, "
    f"p50 {stat('auto_p50', ' ms', 2)}, p99 {stat('auto_p99', ' ms', 2)}, CPU {stat('auto_cpu', ' µs/req')} | "
    f"{stat('auto_vs_bare', '%')} | {stat('auto_vs_durable', '%')} |"
)
print(
    f"| auto-approve at half of peak, fixed rate ({stat('half_rps', ' req/s', 0)}, {stat('half_failed', ' failed', 0)}) | "
    f"p50 {stat('half_p50', ' ms', 2)}, p99 {stat('half_p99', ' ms', 2)}, max {stat('half_max', ' ms', 2)} | | "
    f"p99 {stat('half_p99_vs_durable', '%')} |"
)
print(
    f"| durable limit at the same fixed rate ({stat('durable_half_rps', ' req/s', 0)}, {stat('durable_half_failed', ' failed', 0)}) | "
    f"p50 {stat('durable_half_p50', ' ms', 2)}, p99 {stat('durable_half_p99', ' ms', 2)}, max {stat('durable_half_max', ' ms', 2)} | | 100% |"
)
print(
    f"| verify | {stat('verify_rps', ' req/s', 0)}, p99 {stat('verify_p99', ' ms', 2)}, CPU {stat('verify_cpu', ' µs/req')} | "
    f"{stat('verify_vs_bare', '%')} | |"
)
print(f"| approval → waiting agent's long-poll returns (200 rounds) | p50 {stat('wake_p50', ' ms', 2)}, p99 {stat('wake_p99', ' ms', 2)}, max {stat('wake_max', ' ms', 2)} | | |")
print(f"| RSS idle / peak under load | {stat('rss_idle_mb', ' MB', 0)} / {stat('rss_peak_mb', ' MB', 0)} | | |")
print(f"| start-up to ready: first serve / restart after the load above | {stat('start_first_ms', ' ms', 0)} / {stat('start_restart_ms', ' ms', 0)} | | |")
print(f"| shipped binary (profile dist) | {float(binary_mib):.2f} MiB | | |")
print()
print("| target | result |")
print("|---|---|")
print(f"| half-peak auto-approve p99 ≤ 5 ms in every run | {met('half_p99', lambda x: x <= 5.0)} |")
print(f"| auto-approve ≥ 60% of the durable limit | {met('auto_vs_durable', lambda x: x >= 60.0)} |")
print(f"| verify ≥ 70% of bare | {met('verify_vs_bare', lambda x: x >= 70.0)} |")
print(f"| wake p99 ≤ 20 ms | {met('wake_p99', lambda x: x <= 20.0)} |")
print()
# Not a target: in how many runs the storage and the stack alone, at the same rate, kept the
# half-peak target's p99 (where they did not, the miss is not agent-otp's work).
within = [x for x in data["durable_half_p99"] if x == x and x <= 5.0]
print(f"The durable limit at the same fixed rate had p99 ≤ 5 ms in {len(within)} of {len(data['durable_half_p99'])} runs.")

# The half-peak measure's slowest request in each run, with what the machine did meanwhile
# (fixed_rate's sampler), beside the durable limit's p99 at the same rate and at its peak, and the
# disk alone (a 5 s fsync loop just after): a stall of the server shows as its CPU, one of the
# storage as commits over 10 ms, iowait and I/O stall (in the durable limit and the probe too),
# one of the machine as steal.
print()
print("| run | half-peak p99 / max (at) | commits > 10 ms | durable limit at the same rate: p99 / max | durable limit p99 at peak | disk: fsync p99 / max | slowest request's window: steal core 0 / 1, core 0 idle, iowait, server CPU, load CPU, all work stalled on I/O |")
print("|---|---|---|---|---|---|---|")
for i in range(len(files)):
    v = {k: data[k][i] for k in data}
    if v["worst_steal0_pct"] == v["worst_steal0_pct"]:
        shares = ", ".join(f"{v[k]:.0f}%" for k in ("worst_steal0_pct", "worst_steal1_pct", "worst_idle0_pct",
                                                     "worst_iowait0_pct", "worst_server_pct", "worst_load_pct",
                                                     "worst_io_stalled_pct"))
    elif v["worst_ms"] < 50:
        shares = "under 50 ms, too short to see (the kernel counts CPU time in 10 ms ticks)"
    else:
        shares = "not covered by the 10 ms samples"
    print(f"| {i + 1} | {v['half_p99']:.2f} / {v['worst_ms']:.2f} ms ({v['worst_at_s']:.1f} s) | {v['half_slow_commits']:.0f} | "
          f"{v['durable_half_p99']:.2f} / {v['durable_half_max']:.2f} ms | {v['durable_p99']:.2f} ms | {v['fsync_p99']:.2f} / {v['fsync_max']:.2f} ms | {shares} |")
