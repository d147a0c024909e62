# vm-infra's result callback: at the end of a run, writes the recap (per host: ok, changed, failed, unreachable,
# rescued, skipped) and every failed or unreachable task (name, host, message, whether a rescue caught it) as JSON to
# the file named by VM_INFRA_RESULT_FILE. Enabled only by vm-infra (ANSIBLE_CALLBACKS_ENABLED); reads no other input.
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: vm_infra_result
    type: aggregate
    short_description: writes the run's recap and failed tasks as JSON for vm-infra
    description: the file is named by the VM_INFRA_RESULT_FILE environment variable
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "vm_infra_result"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.failures = []

    def _record(self, result, unreachable):
        r = result._result
        # a loop's result carries its items: what each failed item printed says more than "One or more items failed"
        failed = [i for i in r.get("results", []) if isinstance(i, dict) and i.get("failed")] or [r]
        if r.get("_ansible_no_log"):
            message = r.get("msg") or "(output hidden: no_log)"
        else:
            message = "; ".join(str(i.get("stderr") or i.get("msg") or "").strip() for i in failed)
        self.failures.append({
            "task": result._task.get_name(),
            "host": result._host.get_name(),
            "message": message[:1000],
            "unreachable": unreachable,
        })

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._record(result, False)

    def v2_runner_on_unreachable(self, result):
        self._record(result, True)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            s = stats.summarize(h)
            hosts[h] = {k: s.get(k, 0) for k in ("ok", "changed", "failures", "unreachable", "rescued", "skipped")}
        path = os.environ.get("VM_INFRA_RESULT_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"hosts": hosts, "failures": self.failures}, f)
