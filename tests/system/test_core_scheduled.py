"""Scheduled tasks (core.scheduled_tasks): at() fires once at its time, a DISABLED entry never
fires, a reload adds an entry, and a bad expression is refused with file:line:col."""
import datetime
import subprocess
import time

from core_fixtures import CoreTestCase, demo_taskdef
from harness import binary, wait_until


def at_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return "at(" + t.strftime("%Y-%m-%dT%H:%M:%S") + ")"


def entry(name, expression, state="ENABLED"):
    return f"""\
    - name: {name}
      scheduleExpression: "{expression}"
      state: {state}
      taskDefinition: job
      overrides: {{containerOverrides: [{{name: web, command: ["/bin/sleep", "30"]}}]}}
"""


class CoreScheduledTest(CoreTestCase):
    def started_by(self, core, name):
        return [t for status in ("RUNNING", "STOPPED") for t in
                core.tasks(desiredStatus=status, startedBy=f"events-rule/{name}")]

    def test_at_fires_once_and_disabled_never(self):
        yaml = "  scheduled_tasks:\n" + entry("soon", at_in(5)) + entry(
            "off", at_in(5), state="DISABLED")
        core = self.start_core(yaml)
        core.ok("RegisterTaskDefinition", demo_taskdef(family="job", port=None))
        [task] = wait_until(lambda: self.started_by(core, "soon"), timeout=15,
                            message="the at() task started")
        self.assertEqual(task["group"], "family:job")
        self.assertTrue(task["taskDefinitionArn"].endswith("task-definition/job:1"))
        wait_until(lambda: task["taskArn"] in {t["taskArn"] for t in
                                               core.tasks() if t["lastStatus"] == "RUNNING"},
                   message="it runs")
        wait_until(lambda: "scheduled task soon: started" in core.program.log(),
                   message="logged")
        time.sleep(1.5)  # a repeat would come within a reconcile pass (200 ms)
        self.assertEqual(len(self.started_by(core, "soon")), 1)
        self.assertEqual(self.started_by(core, "off"), [])

    def test_reload_adds_an_entry(self):
        core = self.start_core("  scheduled_tasks: []\n")
        core.ok("RegisterTaskDefinition", demo_taskdef(family="job", port=None))
        text = open(core.config_path).read().replace(
            "  scheduled_tasks: []\n", "  scheduled_tasks:\n" + entry("later", at_in(5)))
        with open(core.config_path, "w") as f:
            f.write(text)
        core.program.signal(1)  # SIGHUP
        wait_until(lambda: self.started_by(core, "later"), timeout=15,
                   message="the reloaded entry fired")

    def test_bad_expressions_are_refused_with_their_position(self):
        cases = [
            ("cron(0 10 * * * *)", "day-of-month"),
            ("rate(5 minute)", "rate"),
            ("every 5 minutes", "expected at(...), rate(...) or cron(...)"),
        ]
        for expression, fragment in cases:
            with self.subTest(expression=expression):
                path = self.write_file("bad.yaml", "core:\n  scheduled_tasks:\n" +
                                       entry("bad", expression))
                proc = subprocess.run([binary("gantry-core"), "--check", "-c", path],
                                      capture_output=True, text=True, timeout=10)
                self.assertEqual(proc.returncode, 1, proc.stdout)
                self.assertIn(f"{path}:3:7: 'core.scheduled_tasks[0]':", proc.stderr)
                self.assertIn("scheduleExpression: ", proc.stderr)
                self.assertIn(fragment, proc.stderr)
