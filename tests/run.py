#!/usr/bin/env python3
"""Gantry's test runner: the cmocka unit-test binaries, then the system tests (tests/system/
test_*.py, which run the real binaries). Prints each failure's detail and ends with the line
`N passed, N failed, N skipped`. Exit status 0 only when nothing failed.

    python3 tests/run.py [-k SUBSTRING]   (make test sets GANTRY_BIN and GANTRY_UNIT)
"""
import argparse
import os
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT_TIMEOUT = 120


def run_unit(directory, pattern):
    passed = failed = skipped = 0
    if not os.path.isdir(directory):
        print(f"unit: no directory {directory}")
        return 0, 1, 0
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.startswith("test_") or not os.access(path, os.X_OK):
            continue
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
        start = time.monotonic()
        try:
            proc = subprocess.run([path], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=UNIT_TIMEOUT)
            out, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out, code = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT", -1
        counts = [0, 0, 0]
        for line in out.splitlines():
            if line.startswith("ok ") and pattern in line:
                counts[2 if "# SKIP" in line else 0] += 1
            elif line.startswith("not ok "):
                counts[1] += 1
        if code != 0 and counts[1] == 0:
            counts[1] = 1  # crashed or died before reporting: a failure, never a silent pass
        print(f"unit {name}: {counts[0]} passed, {counts[1]} failed ({time.monotonic() - start:.1f}s)")
        if counts[1]:
            print(out)
        passed, failed, skipped = passed + counts[0], failed + counts[1], skipped + counts[2]
    return passed, failed, skipped


def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


def run_system(pattern):
    sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
    loader = unittest.TestLoader()
    discovered = loader.discover(os.path.join(ROOT, "tests", "system"), pattern="test_*.py",
                                 top_level_dir=os.path.join(ROOT, "tests", "system"))
    suite = unittest.TestSuite(t for t in iter_tests(discovered) if pattern in t.id())
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    # A test counts once, however many of its subTests failed (a subTest's failure is reported
    # under the subTest, whose test_case is the test).
    def test_of(test):
        return getattr(test, "test_case", test).id()
    failed_tests = {test_of(t) for t, _ in result.failures + result.errors}
    failed_tests |= {test_of(t) for t in result.unexpectedSuccesses}
    skipped_tests = {test_of(t) for t, _ in result.skipped} - failed_tests
    failed, skipped = len(failed_tests), len(skipped_tests)
    return result.testsRun - failed - skipped, failed, skipped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", default="", help="run only tests whose name contains this")
    parser.add_argument("--unit-only", action="store_true")
    parser.add_argument("--system-only", action="store_true")
    args = parser.parse_args()
    unit_dir = os.environ.get("GANTRY_UNIT", os.path.join(ROOT, "build", "release", "tests"))
    totals = [0, 0, 0]
    if not args.system_only:
        for i, n in enumerate(run_unit(unit_dir, args.k)):
            totals[i] += n
    if not args.unit_only:
        for i, n in enumerate(run_system(args.k)):
            totals[i] += n
    if sum(totals) == 0:
        totals[1] += 1
        print("no test ran: counted as a failure")
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main())
