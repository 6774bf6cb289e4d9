#!/usr/bin/python3
"""Unit tests of bench/bench_report.py (ctest bench_report_unit): medians with min-max,
the spread, load-generator and busy-machine flags, "at least" ratios, and the
two-run reproducibility verdict, on small synthetic results.csv files."""

import datetime
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import bench_report as br  # noqa: E402

HEADER = "config,rep,broker,scenario,variant,qos,payload,publishers,subscribers,rate,metric,value\n"


def tput_rows(broker, config, reps, shape="fan-in", qos="0", size="64", gen=0.5, brk=1.0,
              other=0.0, dropped=False, calib=20.0):
    """reps: list of delivered msg/s, one per repetition."""
    out = []
    for i, msgs in enumerate(reps, 1):
        key = "%s,%d,%s,throughput,%s,%s,%s,8,1,," % (config, i, broker, shape, qos, size)
        out += [key + "delivered_msgs_per_s,%g" % msgs,
                key + "broker_cpu_us_per_msg,%g" % (brk / msgs * 1e6),
                key + "bench_cpu,%g" % gen, key + "broker_cpu,%g" % brk,
                key + "verified,%d" % (0 if dropped else 1), key + "other_cpu,%g" % other,
                key + "calib_cpu_ms,%g" % calib]
        if dropped:
            out.append(key + "broker_dropped,1")
    return out


def write_run(d, lines):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "results.csv"), "w") as f:
        f.write(HEADER + "\n".join(lines) + "\n")
    return d


class PointStats(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def load(self, lines):
        return br.Throughput(br.load_rows(os.path.join(
            write_run(self.tmp.name, lines), "results.csv")))

    def test_median_min_max_and_spread(self):
        t = self.load(tput_rows("tmqtt", "default", [100, 130, 110]))
        d = br.point(t, "default", "tmqtt", ("fan-in", "0", "64"), 0.1)
        self.assertEqual(d["m"], 110)
        self.assertEqual((min(d["msgs"]), max(d["msgs"])), (100, 130))
        self.assertAlmostEqual(d["spread_m"], 30 / 110)
        self.assertIn("⚠", br.cell_msgs(d))
        t = self.load(tput_rows("tmqtt", "default", [100, 105, 110]))
        d = br.point(t, "default", "tmqtt", ("fan-in", "0", "64"), 0.1)
        self.assertNotIn("⚠", br.cell_msgs(d))

    def test_generator_bound_gives_at_least(self):
        t = self.load(tput_rows("tmqtt", "default", [1e6] * 3, gen=0.98, brk=0.7) +
                      tput_rows("mosquitto", "default", [1e5] * 3, gen=0.3, brk=1.0))
        case = ("fan-in", "0", "64")
        a = br.point(t, "default", "tmqtt", case, 0.1)
        b = br.point(t, "default", "mosquitto", case, 0.1)
        self.assertTrue(a["genbound"])
        self.assertFalse(b["genbound"])
        mr, cr, pre = br.ratios(a, b)
        self.assertAlmostEqual(mr, 10.0)
        self.assertAlmostEqual(cr, (1.0 / 1e5) / (0.7 / 1e6))
        self.assertEqual(pre, "≥ ")
        self.assertEqual(br.fmtr(mr, pre), "≥ 10.0×")

    def test_busy_and_dropped_flags(self):
        t = self.load(tput_rows("mosquitto", "default", [5e4, 5e4], other=0.5, dropped=True))
        d = br.point(t, "default", "mosquitto", ("fan-in", "0", "64"), 0.1)
        self.assertTrue(d["busy"])
        self.assertTrue(d["dropped"])
        self.assertFalse(d["failed"])   # a logged drop is a result, not a failure
        self.assertIn("⊘", br.cell_msgs(d))
        self.assertIn("▼", br.cell_msgs(d))

    def test_slow_calibration_marks_disturbed(self):
        t = self.load(tput_rows("tmqtt", "default", [1e5, 1e5], calib=20.0) +
                      tput_rows("mosquitto", "default", [1e4, 1e4], calib=30.0))
        a = br.point(t, "default", "tmqtt", ("fan-in", "0", "64"), 0.1)
        b = br.point(t, "default", "mosquitto", ("fan-in", "0", "64"), 0.1)
        self.assertFalse(a["busy"])
        self.assertTrue(b["slow"])   # 30 ms against the run's fastest 20 ms
        self.assertIn("⊘", br.cell_msgs(b))

    def test_failed_delivery_is_marked(self):
        lines = tput_rows("tmqtt", "default", [1e5, 1e5])
        lines = [l.replace("verified,1", "verified,0") if ",2,tmqtt" in l else l for l in lines]
        t = self.load(lines)
        d = br.point(t, "default", "tmqtt", ("fan-in", "0", "64"), 0.1)
        self.assertTrue(d["failed"])
        self.assertIn("✗", br.cell_msgs(d))


class Compare(unittest.TestCase):
    def run_dir(self, root, name, tm, mq):
        return write_run(os.path.join(root, name),
                         tput_rows("tmqtt", "default", tm) + tput_rows("mosquitto", "default", mq))

    def test_within_and_outside_20_percent(self):
        with tempfile.TemporaryDirectory() as root:
            a = self.run_dir(root, "a", [1e6] * 3, [1e5] * 3)
            b = self.run_dir(root, "b", [1.1e6] * 3, [1e5] * 3)
            text, ok = br.compare_runs(a, b)
            self.assertTrue(ok, text)
            self.assertIn("reproduced", text)
            c = self.run_dir(root, "c", [1e6] * 3, [0.7e5] * 3)   # ratio 14.3 vs 10
            text, ok = br.compare_runs(a, c)
            self.assertFalse(ok, text)
            self.assertIn("NOT reproduced", text)

    def test_nothing_to_compare_is_not_a_pass(self):
        with tempfile.TemporaryDirectory() as root:
            a = write_run(os.path.join(root, "a"), tput_rows("tmqtt", "default", [1e6]))
            text, ok = br.compare_runs(a, a)
            self.assertFalse(ok, text)


class Summary(unittest.TestCase):
    def test_summary_has_headline_flags_and_legend(self):
        with tempfile.TemporaryDirectory() as d:
            write_run(d, tput_rows("tmqtt", "default", [1e6, 1.5e6, 1e6], gen=0.95, brk=0.6,
                                   other=0.3) +
                      tput_rows("mosquitto", "default", [1e5, 1e5, 1e5]) +
                      tput_rows("tmqtt", "tuned", [1e6] * 3) +
                      tput_rows("mosquitto", "tuned", [6e4] * 3))
            now = datetime.datetime.utcnow()
            info = br.RunInfo(out=d, argv="--test", started=now, finished=now, quick=True,
                              ok=True, unsupported=[], fan=8, repeat=3, busy_cores=0.1,
                              configs=[("default", "defaults"), ("tuned", "tuning")],
                              brokers=["tmqtt", "mosquitto"])
            br.write_summary(info, lambda *a: None)
            with open(os.path.join(d, "summary.md")) as f:
                s = f.read()
            self.assertIn("### Default configuration (the headline)", s)
            self.assertIn("### Tuned configuration", s)
            self.assertIn("≥ 10.0×", s)                  # generator-bound tmqtt
            self.assertIn("**Warning:**", s)             # busy machine and spread
            self.assertIn("1M (1M–1.5M) † ⚠ ⊘", s)
            table = br.section_table(os.path.join(d, "summary.md"), "## Throughput")
            self.assertTrue(table and table[0].startswith("| case | tmqtt msg/s"), table)


if __name__ == "__main__":
    unittest.main()
