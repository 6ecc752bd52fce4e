"""`--check` on the real binaries: every file of the bad-config corpus gives its exact
file:line:col message and exit status 1; good files print "configuration OK" and exit 0."""
import os

from harness import ROOT, GantryTestCase

BAD_DIR = os.path.join(ROOT, "tests", "config", "bad")
# Every program that reads the configuration, with the arguments that come before the options.
CHECKERS = [("gantry", ["up"]), ("gantry-demo-app", []), ("gantry-lb", [])]


def expected_message(path):
    sidecar = path + ".expect"
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            text = f.read()
    else:
        with open(path) as f:
            text = f.readline()
        assert text.startswith("# expect: "), path
        text = text[len("# expect: "):]
    return text.strip().replace("{file}", path)


def corpus():
    return sorted(os.path.join(BAD_DIR, name) for name in os.listdir(BAD_DIR)
                  if not name.endswith(".expect"))


class ConfigCheckTest(GantryTestCase):
    def test_every_bad_file_gives_its_message_through_check(self):
        files = corpus()
        self.assertGreaterEqual(len(files), 25)
        for program, pre in CHECKERS:
            for path in files:
                with self.subTest(program=program, file=os.path.basename(path)):
                    proc = self.run_program(program, [*pre, "--check", "-c", path])
                    self.assertEqual(proc.returncode, 1, proc.stderr)
                    self.assertEqual(proc.stderr.strip(), expected_message(path))
                    self.assertNotIn("configuration OK", proc.stdout)

    def test_good_files_are_ok(self):
        examples = os.path.join(ROOT, "config", "examples")
        files = [os.path.join(examples, n) for n in sorted(os.listdir(examples))]
        self.assertTrue(files)
        for program, pre in CHECKERS:
            for path in files:
                with self.subTest(program=program, file=os.path.basename(path)):
                    proc = self.run_program(program, [*pre, "--check", "-c", path])
                    self.assertEqual((proc.returncode, proc.stdout.strip()),
                                     (0, "configuration OK"), proc.stderr)

    def test_no_file_at_all_is_ok(self):
        for program, pre in CHECKERS:
            proc = self.run_program(program, [*pre, "--check"])
            self.assertEqual((proc.returncode, proc.stdout.strip()), (0, "configuration OK"),
                             proc.stderr)

    def test_several_files_are_checked_in_order(self):
        good = self.write_file("good.yaml", "log:\n  level: debug\n")
        bad = self.write_file("bad.yaml", "demo:\n  body_size: 1t\n")
        proc = self.run_program("gantry", ["up", "--check", "-c", good, "-c", bad])
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(),
                         f"{bad}:2:14: invalid value '1t' for 'demo.body_size' (expected a size "
                         "such as 512, 16k or 1m, from 0 to 64m)")

    def test_missing_and_unreadable_files(self):
        missing = os.path.join(self.tmp, "nope.yaml")
        proc = self.run_program("gantry", ["up", "--check", "-c", missing])
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(),
                         f"{missing}: cannot read the file: No such file or directory")
        proc = self.run_program("gantry", ["up", "--check", "-c", self.tmp])  # a directory
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"{self.tmp}: cannot read the file:", proc.stderr)

    def test_bad_command_line_override(self):
        proc = self.run_program("gantry", ["up", "--check", "--log-level", "loud"])
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(), "command line: --log-level 'loud' (expected one "
                         "of: debug, info, warn, error)")
        proc = self.run_program("gantry", ["up", "--check", "--redis", "redis://nowhere:1"])
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--redis 'redis://nowhere:1'", proc.stderr)

    def test_help_describes_the_options(self):
        for program, pre in CHECKERS:
            proc = self.run_program(program, [*pre, "--help"])
            self.assertEqual(proc.returncode, 0, proc.stderr)
            for option in ("-c, --config FILE", "--check", "--log-level"):
                self.assertIn(option, proc.stdout)
