"""bench/bench_report.py — summary.md, plots and run-to-run comparison for bench/run-all.

Reads results.csv as written by bench/run-all:
  config,rep,broker,scenario,variant,qos,payload,publishers,subscribers,rate,metric,value
(tmqtt-bench's rows with the configuration and repetition in front, plus the harness's
own rows: other_cpu, steal_cpu, loadavg_before/after, wall_s, t_start_s and
broker_dropped).

The headline is the throughput scenario in the `default` configuration. For every
point (shape, QoS, payload) and broker it takes the repetitions and reports:
  * delivered messages/s and the broker's CPU time per delivered message
    (broker CPU from /proc/PID/stat / delivered msg/s) as median with min-max;
  * the load generator's and the broker's CPU (1.0 = one core), medians;
  * flags: SPREAD when (max - min) / median > 20 % for either figure; GEN when the load
    generator was the bottleneck (its median CPU >= 0.9 while the broker's is < 0.9:
    the broker had spare capacity, so its numbers are lower bounds and a tmqtt /
    Mosquitto ratio is "at least"); BUSY when other processes used more than
    BUSY_CORES during one of the repetitions; DROPPED when the broker logged that it
    dropped messages (Mosquitto's default queue); FAILED when a delivery check failed.
Ratios are ratios of medians.

compare_runs(a, b) compares the headline ratios of two result directories (the
reproducibility criterion of issue 16: every ratio within 20 %).
"""

import csv
import os
import shutil
import statistics
import subprocess

GEN_CPU = 0.9            # load generator saturated at or above this (1.0 = a core)
SPREAD = 0.20            # spread warning threshold
SLOW = 1.20              # calibration loop this much slower than the run's fast times
REPRO = 0.20             # two runs' ratios must agree within this
TM, REF, WASM = "tmqtt", "mosquitto", "tmqtt-wasm"


class RunInfo:
    def __init__(self, **kw):
        self.__dict__.update(kw)


# ---- reading ---------------------------------------------------------------------------

def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Throughput:
    """The throughput rows, indexed by (config, rep, broker, shape, qos, payload, metric)."""

    def __init__(self, rows):
        self.v = {}
        self.cases = []
        self.reps = {}
        self.calib = []
        for r in rows:
            if r["scenario"] != "throughput":
                continue
            case = (r["variant"], r["qos"], r["payload"])
            if r["metric"] == "delivered_msgs_per_s" and case not in self.cases:
                self.cases.append(case)
            self.reps.setdefault(r["config"], set()).add(r["rep"])
            if r["metric"] == "calib_cpu_ms" and fnum(r["value"]):
                self.calib.append(fnum(r["value"]))
            self.v[(r["config"], r["rep"], r["broker"]) + case + (r["metric"],)] = fnum(r["value"])

    @property
    def calib_min(self):
        """The run's fast calibration time: its 10th percentile (one lucky sample
        does not make every other point look slow)."""
        return sorted(self.calib)[len(self.calib) // 10] if self.calib else None

    def values(self, config, broker, case, metric):
        out = []
        for rep in sorted(self.reps.get(config, ()), key=lambda x: int(x)):
            x = self.v.get((config, rep, broker) + case + (metric,))
            if x is not None:
                out.append(x)
        return out

    def configs(self):
        return sorted(self.reps, key=lambda c: (c != "default", c))


def med(xs):
    return statistics.median(xs) if xs else None


def spread(xs):
    m = med(xs)
    return (max(xs) - min(xs)) / m if xs and len(xs) > 1 and m else 0.0


def point(t, config, broker, case, busy_cores):
    """Everything the summary says about one broker at one throughput point."""
    msgs = t.values(config, broker, case, "delivered_msgs_per_s")
    if not msgs:
        return None
    per = t.values(config, broker, case, "broker_cpu_us_per_msg")
    if not per:   # older CSVs: derive it
        bc = t.values(config, broker, case, "broker_cpu")
        per = [c / m * 1e6 for c, m in zip(bc, msgs) if m]
    d = dict(msgs=msgs, per=per,
             gen=med(t.values(config, broker, case, "bench_cpu")),
             brk=med(t.values(config, broker, case, "broker_cpu")),
             other=max(t.values(config, broker, case, "other_cpu") or [0.0]),
             slow=max(t.values(config, broker, case, "calib_cpu_ms") or [0.0]) >
             SLOW * t.calib_min if t.calib_min else False,
             dropped=any(t.values(config, broker, case, "broker_dropped")))
    d["failed"] = (0 in t.values(config, broker, case, "verified")) and not d["dropped"]
    d["m"], d["p"] = med(msgs), med(per)
    d["spread_m"], d["spread_p"] = spread(msgs), spread(per)
    d["spread"] = max(d["spread_m"], d["spread_p"])
    d["genbound"] = d["gen"] is not None and d["gen"] >= GEN_CPU and \
        (d["brk"] is None or d["brk"] < GEN_CPU)
    d["busy"] = d["other"] > busy_cores or d["slow"]
    return d


def marks(d, which="spread"):
    """The flags of a point; `which` picks the spread that counts (of msg/s or of CPU
    per message)."""
    if d is None:
        return ""
    s = ""
    if d["genbound"]:
        s += " †"
    if d[which] > SPREAD:
        s += " ⚠"
    if d["busy"]:
        s += " ⊘"
    if d["dropped"]:
        s += " ▼"
    if d["failed"]:
        s += " ✗"
    return s


def ratios(a, b):
    """(msg/s ratio a/b, CPU-per-message ratio b/a, prefix) of two point() dicts.
    '≥' when only a was generator-bound (a's capacity is higher still), '≤' when only
    b was, '~' when both were."""
    if not a or not b or not a["m"] or not b["m"]:
        return None, None, ""
    mr = a["m"] / b["m"]
    cr = b["p"] / a["p"] if a["p"] and b["p"] else None
    pre = {(True, False): "≥ ", (False, True): "≤ ", (True, True): "~ "}.get(
        (a["genbound"], b["genbound"]), "")
    return mr, cr, pre


def case_name(case):
    shape, q, size = case
    return "%s QoS %s %s B" % (shape, q, size)


# ---- formatting ------------------------------------------------------------------------

def fmt(v, nd=1):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return "{:,.0f}".format(v)
    return ("{:.%df}" % nd).format(v)


def si(v):
    if v is None:
        return "—"
    for div, suf in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return "%.3g%s" % (v / div, suf)
    return "%.3g" % v


def fmtr(v, pre=""):
    if v is None:
        return "—"
    return pre + ("%.1f×" % v if v >= 10 else "%.2f×" % v if v >= 0.1 else "%.3f×" % v)


def cell_msgs(d):
    if d is None:
        return "—"
    return "%s (%s–%s)%s" % (si(d["m"]), si(min(d["msgs"])), si(max(d["msgs"])),
                             marks(d, "spread_m"))


def cell_per(d):
    if d is None or d["p"] is None:
        return "—"
    return "%.3g (%.3g–%.3g)%s" % (d["p"], min(d["per"]), max(d["per"]), marks(d, "spread_p"))


# ---- plots -----------------------------------------------------------------------------

TERM = "set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'\n"


def gnuplot(out, log, name, script):
    if shutil.which("gnuplot") is None:
        return
    path = os.path.join(out, name + ".gp")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True, cwd=out)
    if r.returncode:
        log("gnuplot %s failed: %s" % (name, r.stderr.strip()))


def series(rows, broker, scenario, xkey, metric):
    out = []
    for r in rows:
        if r["broker"] == broker and r["scenario"] == scenario and r["metric"] == metric:
            x, y = fnum(r[xkey]), fnum(r["value"])
            if x is not None and y is not None:
                out.append((x, y))
    return sorted(out)


def plot_lines(out, log, rows, brokers, name, scenario, xkey, title, xlabel, logbase=2):
    data = os.path.join(out, name + ".dat")
    plots = []
    with open(data, "w") as f:
        idx = 0
        for b in brokers:
            for m in ("p50_us", "p99_us"):
                s = series(rows, b, scenario, xkey, m)
                if not s:
                    continue
                f.write("# %s %s\n" % (b, m))
                for x, y in s:
                    f.write("%g %g\n" % (x, y / 1000.0))
                f.write("\n\n")
                plots.append("'%s' index %d with linespoints lw 2 dt %d title '%s %s'" %
                             (os.path.basename(data), idx, 1 if m == "p50_us" else 2, b,
                              m.split("_")[0]))
                idx += 1
    if not plots:
        return
    gnuplot(out, log, name, TERM + "set output '%s.png'\nset title '%s'\nset xlabel '%s'\n"
            "set ylabel 'end-to-end latency (ms)'\nset logscale y\n%sset grid\n"
            "set key left top\nplot %s\n" % (name, title, xlabel,
                                            "set logscale x %d\n" % logbase,
                                            ", \\\n  ".join(plots)))


def plot_bars(out, log, name, title, ylabel, cats, brokers, values, logy=False):
    """values[(cat, broker)] -> number (missing: 0)."""
    data = os.path.join(out, name + ".dat")
    with open(data, "w") as f:
        f.write("# category " + " ".join(b for b in brokers) + "\n")
        for c in cats:
            f.write('"%s" ' % c + " ".join("%g" % values.get((c, b), 0) for b in brokers) + "\n")
    cols = ", ".join("'%s' using %d:xtic(1) title '%s'" % (os.path.basename(data), i + 2, b)
                     for i, b in enumerate(brokers))
    gnuplot(out, log, name, TERM + "set output '%s.png'\nset title '%s'\nset ylabel '%s'\n"
            "set style data histogram\nset style histogram cluster gap 1\n"
            "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset xtics rotate by -30\n"
            "set grid ytics\nset key left top\n%sset yrange [%s:*]\nplot %s\n" %
            (name, title, ylabel, "set logscale y\n" if logy else "",
             "0.01" if logy else "0", cols))


def metric(rows, broker, scenario, variant, m, **keys):
    for r in rows:
        if r["broker"] == broker and r["scenario"] == scenario and r["metric"] == m and \
                (variant is None or r["variant"] == variant) and \
                all(r[k] == str(v) for k, v in keys.items()):
            return fnum(r["value"])
    return None


# ---- the summary -------------------------------------------------------------------------

LEGEND = ("† the load generator was the bottleneck (its CPU ≥ 0.9 while the broker's was "
          "< 0.9): the broker had spare capacity, so its figures are lower bounds and a "
          "ratio in its favour reads \"≥\" (at least). ⚠ the repetitions spread by more "
          "than 20 % (max − min over median). ⊘ the machine was disturbed during a "
          "repetition: other processes used more than %.2f core, or a fixed CPU-bound "
          "calibration loop run just before took over 20 % more CPU time than the run's "
          "10th percentile (the host gave less work per CPU second). ▼ the broker logged that it dropped messages (its queue "
          "limit): the figure counts what it delivered. ✗ a delivery check failed.")


def headline_table(w, t, config, brokers, busy_cores):
    """msg/s and CPU per message for one configuration; returns the per-case ratios."""
    has = lambda b: b in brokers
    out = {}
    w("| case | " + " | ".join("%s msg/s" % b for b in brokers) +
      (" | tmqtt/mosquitto" if has(TM) and has(REF) else "") +
      (" | wasm/native" if has(TM) and has(WASM) else "") + " |")
    w("|---|" + "---:|" * (len(brokers) + (has(TM) and has(REF)) + (has(TM) and has(WASM))))
    for case in t.cases:
        ds = {b: point(t, config, b, case, busy_cores) for b in brokers}
        line = "| %s | %s" % (case_name(case), " | ".join(cell_msgs(ds[b]) for b in brokers))
        if has(TM) and has(REF):
            mr, cr, pre = ratios(ds[TM], ds[REF])
            out[case] = (mr, cr, pre, ds[TM], ds[REF])
            line += " | " + fmtr(mr, pre)
        if has(TM) and has(WASM):
            mr, _, pre = ratios(ds[WASM], ds[TM])
            line += " | " + fmtr(mr, pre)
        w(line + " |")
    w("")
    w("Broker CPU time per delivered message, µs (lower is better; median, min–max); "
      "the last column is how many times more CPU Mosquitto spends per message:\n")
    w("| case | " + " | ".join("%s µs/msg" % b for b in brokers) +
      (" | mosquitto/tmqtt" if has(TM) and has(REF) else "") + " |")
    w("|---|" + "---:|" * (len(brokers) + (has(TM) and has(REF))))
    for case in t.cases:
        ds = {b: point(t, config, b, case, busy_cores) for b in brokers}
        line = "| %s | %s" % (case_name(case), " | ".join(cell_per(ds[b]) for b in brokers))
        if has(TM) and has(REF):
            _, cr, pre = ratios(ds[TM], ds[REF])
            line += " | " + fmtr(cr, pre)
        w(line + " |")
    w("")
    w("CPU during the measured window (medians, 1.0 = one core): load generator / broker\n")
    w("| case | " + " | ".join(brokers) + " |")
    w("|---|" + "---:|" * len(brokers))
    for case in t.cases:
        cells = []
        for b in brokers:
            d = point(t, config, b, case, busy_cores)
            cells.append("—" if d is None else "%s / %s%s" % (fmt(d["gen"], 2), fmt(d["brk"], 2),
                                                             " †" if d["genbound"] else ""))
        w("| %s | %s |" % (case_name(case), " | ".join(cells)))
    w("")
    return out


def ratio_range(rs, idx):
    vals = [(r[idx], r[2]) for r in rs.values() if r[idx] is not None]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    return "%s to %s" % (fmtr(lo[0], lo[1]), fmtr(hi[0], hi[1]))


def warnings(t, brokers, busy_cores):
    """Lines about spread, other load and drops over every configuration."""
    spread_pts, busy_pts, dropped = [], [], []
    for config in t.configs():
        for case in t.cases:
            for b in brokers:
                d = point(t, config, b, case, busy_cores)
                if d is None:
                    continue
                name = "%s %s (%s)" % (b, case_name(case), config)
                if d["spread"] > SPREAD:
                    spread_pts.append("%s %.0f %%" % (name, 100 * d["spread"]))
                if d["busy"]:
                    busy_pts.append("%s %.2f core%s" % (name, d["other"], ", slow CPU" if d["slow"] else ""))
                if d["dropped"]:
                    dropped.append(name)
    return spread_pts, busy_pts, dropped


def throughput_section(w, info, rows, log):
    t = Throughput(rows)
    if not t.cases:
        return None
    brokers = [b for b in info.brokers if any(r["broker"] == b for r in rows)]
    w("## Throughput\n")
    w("Fan-in = %d publishers → 1 subscriber, fan-out = 1 publisher → %d subscribers, "
      "publishing as fast as the load generator's flow-control window allows. Every point "
      "ran %d time(s) per configuration with a fresh broker, the brokers interleaved point "
      "by point in rotating order. Cells: median (min–max) over the repetitions.\n"
      % (info.fan, info.fan, info.repeat))
    w(LEGEND.replace("%.2f", "%.2f" % info.busy_cores) + "\n")
    result = None
    for config in t.configs():
        expl = dict(info.configs).get(config, "")
        w("### %s configuration%s\n" % (config.capitalize(),
                                       " (the headline)" if config == "default" else ""))
        if expl:
            w(expl + "\n")
        w("Delivered messages per second at the subscribers (higher is better):\n")
        rs = headline_table(w, t, config, brokers, info.busy_cores)
        if rs:
            gen = [case_name(c) for c, r in rs.items() if r[3] and r[3]["genbound"]]
            w("tmqtt/Mosquitto in this configuration: **%s** messages per second; Mosquitto "
              "spends **%s** tmqtt's CPU time per delivered message.%s\n" %
              (ratio_range(rs, 0), ratio_range(rs, 1),
               (" In %d of %d cases (†) the load generator, not tmqtt, was the bottleneck: "
                "there the ratio is a lower bound (\"≥\", at least)." % (len(gen), len(rs)))
               if gen else ""))
        if config == "default":
            result = rs
            cats, vals = [], {}
            for case in t.cases:
                cats.append(case_name(case))
                for b in brokers:
                    d = point(t, config, b, case, info.busy_cores)
                    if d:
                        vals[(case_name(case), b)] = d["p"] or 0
            plot_bars(info.out, log, "throughput-cpu", "Broker CPU per delivered message "
                      "(default configuration, median)", "µs per message", cats, brokers,
                      vals, logy=True)
            w("![broker CPU per message](throughput-cpu.png)\n")
            vals = {}
            for case in t.cases:
                for b in brokers:
                    d = point(t, config, b, case, info.busy_cores)
                    if d:
                        vals[(case_name(case), b)] = d["m"]
            plot_bars(info.out, log, "throughput", "Delivered messages per second "
                      "(default configuration, median)", "messages/s", cats, brokers, vals,
                      logy=True)
            w("![throughput](throughput.png)\n")
    return result


def latency_sections(w, info, rows, log, brokers):
    tm, ref, wasm = (TM if TM in brokers else None, REF if REF in brokers else None,
                     WASM if WASM in brokers else None)
    for sc, xkey, xl, title in (("rate", "rate", "offered msg/s", "Latency vs publication rate "
                                 "(1 publisher, 1 subscriber, QoS 0, 64 B)"),
                                ("subscribers", "subscribers", "subscribers",
                                 "Latency vs subscribers in one shared subscription "
                                 "(1 publisher at 25 msg/s)"),
                                ("publishers", "publishers", "publishers",
                                 "Latency vs publishers (25 subscribers, 5 msg/s each)")):
        xs = sorted({fnum(r[xkey]) for r in rows if r["scenario"] == sc and
                     fnum(r[xkey]) is not None})
        if not xs:
            continue
        w("## %s\n" % title)
        cfgs = sorted({r["config"] for r in rows if r["scenario"] == sc})
        w("%s configuration, one run. p50 / p99 end-to-end latency in ms (ratios on "
          "p99; lower is better).\n" % "/".join(c.capitalize() for c in cfgs))
        h = "| %s | " % xl + " | ".join("%s p50 / p99" % b for b in brokers)
        sepl = "|---|" + "---:|" * len(brokers)
        if tm and ref:
            h += " | p99 tmqtt/mosquitto"
            sepl += "---:|"
        if tm and wasm:
            h += " | p99 wasm/native"
            sepl += "---:|"
        w(h + " |")
        w(sepl)
        for x in xs:
            key = {xkey: ("%d" % x) if x == int(x) else ("%.6f" % x)}
            cells, p99s = [], {}
            for b in brokers:
                p50 = metric(rows, b, sc, None, "p50_us", **key)
                p99 = metric(rows, b, sc, None, "p99_us", **key)
                v = metric(rows, b, sc, None, "verified", **key)
                sat = metric(rows, b, sc, None, "saturated", **key)
                p99s[b] = p99
                cells.append("%s / %s%s%s" % (fmt(p50 / 1000 if p50 is not None else None, 3),
                                              fmt(p99 / 1000 if p99 is not None else None, 3),
                                              " (sat.)" if sat else "", " ✗" if v == 0 else ""))
            line = "| %s | %s" % (key[xkey], " | ".join(cells))
            if tm and ref:
                a, b_ = p99s.get(tm), p99s.get(ref)
                line += " | " + fmtr(a / b_ if a is not None and b_ else None)
            if tm and wasm:
                a, b_ = p99s.get(wasm), p99s.get(tm)
                line += " | " + fmtr(a / b_ if a is not None and b_ else None)
            w(line + " |")
        w("")
        name = "latency-" + sc
        plot_lines(info.out, log, rows, brokers, name, sc, xkey, title, xl,
                   10 if sc == "rate" else 2)
        w("![%s](%s.png)\n" % (name, name))


def broker_cells(rows, brokers, scenario, variant, cell):
    """One table cell per broker: "unsupported", or cell(broker, get) where get(metric)
    reads that broker's value."""
    out = []
    for b in brokers:
        if metric(rows, b, scenario, variant, "unsupported"):
            out.append("unsupported")
        else:
            out.append(cell(b, lambda m, b=b: metric(rows, b, scenario, variant, m)))
    return out


def connect_section(w, info, rows, log, brokers):
    configs = []
    for r in rows:
        if r["scenario"] == "connect" and r["config"] not in configs:
            configs.append(r["config"])
    if not configs:
        return
    tm, ref = TM if TM in brokers else None, REF if REF in brokers else None
    w("## Connection latency (TCP connect → CONNACK, sequential)\n")
    w("p50 / p99 in ms; TLS is 1.3 with ECDHE (P-256 certificate) or an external PSK. "
      "With its default `set_tcp_nodelay false`, Mosquitto's CONNACK after a TLS handshake "
      "waits for the client's delayed ACK of the session tickets (Nagle's algorithm, about "
      "40 ms on Linux); `set_tcp_nodelay true` (tuned) removes that.\n")
    cvals, cats = {}, []
    for config in sorted(configs, key=lambda c: (c != "default", c)):
        crow = [r for r in rows if r["config"] == config]
        conn_vars = []
        for r in crow:
            if r["scenario"] == "connect" and r["variant"] not in conn_vars:
                conn_vars.append(r["variant"])
        w("%s configuration:\n" % config.capitalize())
        h = "| mode | " + " | ".join("%s p50 / p99" % b for b in brokers)
        sepl = "|---|" + "---:|" * len(brokers)
        if tm and ref:
            h += " | p50 tmqtt/mosquitto"
            sepl += "---:|"
        w(h + " |")
        w(sepl)
        for v in conn_vars:
            p50s = {}
            cat = "%s (%s)" % (v, config)

            def cell(b, get):
                p50, p99 = get("p50_us"), get("p99_us")
                p50s[b] = p50
                if p50 is not None:
                    cvals[(cat, b)] = p50 / 1000
                return "%s / %s%s" % (fmt(p50 / 1000 if p50 is not None else None, 3),
                                      fmt(p99 / 1000 if p99 is not None else None, 3),
                                      " ✗" if get("verified") == 0 else "")
            cells = broker_cells(crow, brokers, "connect", v, cell)
            cats.append(cat)
            line = "| %s | %s" % (v, " | ".join(cells))
            if tm and ref:
                a, b_ = p50s.get(tm), p50s.get(ref)
                line += " | " + fmtr(a / b_ if a is not None and b_ else None)
            w(line + " |")
        w("")
    plot_bars(info.out, log, "connect", "Connection latency (median)", "ms", cats, brokers,
              cvals, logy=True)
    w("![connect](connect.png)\n")


def idle_section(w, info, rows, log, brokers):
    trs = []
    for r in rows:
        if r["scenario"] == "idle" and r["variant"] not in trs:
            trs.append(r["variant"])
    if not trs:
        return {}
    tm, ref = TM if TM in brokers else None, REF if REF in brokers else None
    w("## Memory per idle connection\n")
    w("`tmqtt-bench idle`: N connections (each a complete TCP, TLS 1.3 or TLS 1.3 + "
      "attestation handshake and CONNACK) held by several load-generator processes; per "
      "connection = (broker VmRSS with N open − VmRSS before) / N, read from "
      "/proc/PID/status after one warm-up connection and a settle time (RssAnon, the "
      "anonymous memory only, in parentheses). Bytes per connection, lower is better.\n")
    w("| transport | connections | " + " | ".join(brokers) +
      (" | tmqtt/mosquitto" if tm and ref else "") + " |")
    w("|---|---:|" + "---:|" * (len(brokers) + (1 if tm and ref else 0)))
    ivals, per = {}, {}
    for tr in trs:
        ns = []

        def cell(b, get):
            bpc, ok = get("bytes_per_connection"), get("verified")
            ns.append(get("connections"))
            if bpc is not None and ok:
                ivals[(tr, b)] = per[(tr, b)] = bpc
            return "—" if bpc is None else "%s (%s)%s" % (
                fmt(bpc), fmt(get("anon_bytes_per_connection")), "" if ok else " ✗")
        cells = broker_cells(rows, brokers, "idle", tr, cell)
        n = max([x for x in ns if x], default=None)
        line = "| %s | %s | %s" % (tr, fmt(n), " | ".join(cells))
        if tm and ref:
            a, b_ = per.get((tr, tm)), per.get((tr, ref))
            line += " | " + fmtr(a / b_ if a is not None and b_ else None)
        w(line + " |")
    w("")
    plot_bars(info.out, log, "idle-memory", "Broker memory per idle connection", "bytes", trs,
              brokers, ivals)
    w("![idle memory](idle-memory.png)\n")
    return per


def machine_section(w, rows, t, brokers, info):
    walls = [fnum(r["value"]) for r in rows if r["metric"] == "other_cpu"]
    if not walls:
        return
    cal = t.calib
    w("## The machine during the run\n")
    w("Around every tmqtt-bench invocation the harness read /proc/stat: the CPU time used by "
      "processes other than the broker, the load generator and the harness itself, per "
      "second of wall time (\"cores\"), and the time stolen by the hypervisor. Over all "
      "%d measurements: others used %.3f core on median, %.2f at most; steal %.3f core at "
      "most. Load average (1 min) from %.2f to %.2f.\n" % (
          len(walls), med(walls), max(walls),
          max([fnum(r["value"]) for r in rows if r["metric"] == "steal_cpu"] or [0]),
          min([fnum(r["value"]) for r in rows if r["metric"] == "loadavg_before"] or [0]),
          max([fnum(r["value"]) for r in rows if r["metric"] == "loadavg_after"] or [0])))
    try:
        with open(os.path.join(info.out, "env.txt")) as f:
            cc = [l.split(": ", 1)[1].strip() for l in f if l.startswith("cpu coupling:")]
    except OSError:
        cc = []
    if cc:
        w("CPU coupling, measured at the start: %s. The broker and the load generator run "
          "on the two CPUs at once, so each one's CPU time per message also depends on "
          "how busy the other is.\n" % cc[0])
    if cal:
        w("Before every throughput measurement a fixed CPU-bound loop was timed (CPU time, "
          "not wall time): %.1f ms on median, %.1f to %.1f ms. Its spread is how much the "
          "work bought by one CPU second varied during the run, whatever ran inside this "
          "machine.\n" % (med(cal), min(cal), max(cal)))
    sp, busy, dropped = warnings(t, brokers, info.busy_cores)
    if busy:
        w("**Throughput points measured on a disturbed machine (⊘: others > %.2f core, or "
          "the calibration loop > 20 %% slower than the run's 10th percentile):** %s.\n" %
          (info.busy_cores, "; ".join(busy)))
    else:
        w("No throughput point was disturbed (other processes ≤ %.2f core, calibration "
          "within 20 %% of the run's 10th percentile).\n" % info.busy_cores)
    if sp:
        w("**Points whose repetitions spread by more than 20 % (⚠):** " + "; ".join(sp) + ".\n")
    if dropped:
        w("Points where the broker dropped messages by its queue limit (▼): " +
          "; ".join(dropped) + ".\n")


def write_summary(info, log):
    rows = load_rows(os.path.join(info.out, "results.csv"))
    brokers = info.brokers
    md = []
    w = md.append
    dur = (info.finished - info.started).total_seconds()
    w("# tmqtt benchmark summary\n")
    w("Generated by `bench/run-all %s` on %s, %s mode, wall time %.0f s (%.1f min)." %
      (info.argv, info.started.strftime("%Y-%m-%d %H:%M UTC"),
       "quick" if info.quick else "full", dur, dur / 60))
    w("Brokers: %s. All traffic on 127.0.0.1. Machine and versions: `env.txt`; every "
      "command and its output: `log.txt`; every number: `results.csv`.\n" % ", ".join(brokers))
    if info.unsupported:
        w("Not measured (unsupported by the build): " + "; ".join(info.unsupported) + "\n")
    t = Throughput(rows)
    sp, busy, _ = warnings(t, brokers, info.busy_cores)
    if busy or sp:
        w("> **Warning:** %s%s%s See \"The machine during the run\".\n" % (
            "%d throughput point(s) ran while other processes used more than %.2f core. " %
            (len(busy), info.busy_cores) if busy else "",
            "%d point(s) spread by more than 20 %% over their repetitions. " % len(sp)
            if sp else "",
            "Treat those numbers with care." if busy or sp else ""))
    rs = throughput_section(w, info, rows, log)
    latency_sections(w, info, rows, log, brokers)
    connect_section(w, info, rows, log, brokers)
    per = idle_section(w, info, rows, log, brokers)
    machine_section(w, rows, t, brokers, info)
    if TM in brokers and REF in brokers:
        w("## Issue 2 targets (tmqtt vs Mosquitto, default configuration, medians)\n")
        misses = [case_name(c) for c, r in (rs or {}).items() if r[0] is not None and r[0] < 2]
        lat_miss = []
        for case in t.cases:
            a = metric(rows, TM, "throughput", case[0], "p99_us", qos=case[1], payload=case[2],
                       config="default")
            b = metric(rows, REF, "throughput", case[0], "p99_us", qos=case[1],
                       payload=case[2], config="default")
            if a is not None and b is not None and a > b:
                lat_miss.append(case_name(case))
        mt, mr = per.get(("plain", TM)), per.get(("plain", REF))
        w("| target | result |")
        w("|---|---|")
        w("| delivered msg/s ≥ 2× Mosquitto in every throughput case | %s |" %
          ("not measured" if not rs else "**met**" if not misses else
           "**missed**: " + ", ".join(misses)))
        w("| p99 latency no worse than Mosquitto (throughput cases, first repetition) | %s |" %
          ("not measured" if not t.cases else "**met**" if not lat_miss else
           "**missed**: " + ", ".join(lat_miss)))
        w("| memory per idle connection (plain) no worse than Mosquitto | %s |" %
          ("not measured" if mt is None or mr is None else
           ("**met** (%s vs %s bytes)" if mt <= mr else "**missed** (%s vs %s bytes)")
           % (fmt(mt), fmt(mr))))
        w("")
    w("## Verdict\n")
    w("All runs completed and verified delivery." if info.ok else
      "Some runs FAILED (delivery check, timeout or broker exit): see log.txt.")
    with open(os.path.join(info.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def section_table(summary_path, heading):
    """The table lines of one section of a summary.md (for the console)."""
    out, inside = [], False
    with open(summary_path) as f:
        for line in f:
            if line.startswith("## "):
                inside = line.startswith(heading)
            elif inside and line.startswith("|"):
                out.append(line.rstrip("\n"))
    return out


# ---- two runs --------------------------------------------------------------------------

def headline(path):
    """{case: (msg ratio, CPU ratio, prefix)} of the default configuration in a run dir."""
    rows = load_rows(os.path.join(path, "results.csv"))
    t = Throughput(rows)
    out = {}
    for case in t.cases:
        a, b = point(t, "default", TM, case, 1e9), point(t, "default", REF, case, 1e9)
        mr, cr, pre = ratios(a, b)
        if mr is not None:
            out[case] = (mr, cr, pre)
    return out


def compare_runs(a, b):
    """Markdown comparing the headline ratios of two runs; (text, all within 20 %)."""
    try:
        ha, hb = headline(a), headline(b)
    except OSError as e:
        return "compare: %s" % e, False
    lines = ["# Reproducibility: two runs of bench/run-all\n",
             "Headline ratios (default configuration, medians) of run A (`%s`) and run B "
             "(`%s`); deviation = |B / A − 1|; the criterion is every deviation ≤ %d %%.\n"
             % (a, b, REPRO * 100),
             "| case | msg/s tmqtt/mosquitto A | B | deviation | CPU/msg mosquitto/tmqtt A | "
             "B | deviation |", "|---|---:|---:|---:|---:|---:|---:|"]
    worst, n = 0.0, 0
    for case in ha:
        if case not in hb:
            continue
        (ma, ca, pa), (mb, cb, pb) = ha[case], hb[case]
        dm = abs(mb / ma - 1)
        dc = abs(cb / ca - 1) if ca and cb else None
        worst = max(worst, dm, dc or 0)
        n += 1
        lines.append("| %s | %s | %s | %.0f %% | %s | %s | %s |" % (
            case_name(case), fmtr(ma, pa), fmtr(mb, pb), 100 * dm, fmtr(ca, pa), fmtr(cb, pb),
            "—" if dc is None else "%.0f %%" % (100 * dc)))
    ok = n > 0 and worst <= REPRO
    lines.append("")
    lines.append("%d case(s) compared; largest deviation %.0f %%: **%s**." % (
        n, 100 * worst, "reproduced (all within %d %%)" % (REPRO * 100) if ok else
        "NOT reproduced" if n else "nothing to compare (no tmqtt and Mosquitto throughput "
        "in both runs)"))
    return "\n".join(lines), ok
