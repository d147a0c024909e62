// Readiness reads cloud-init's result for the boot (/run/cloud-init/result.json) instead of starting `cloud-init status`.
import { CLOUD_INIT_DONE, cloudInitResult, CloudInitResultError } from "../../providers/vmReady";

test("a result without errors is done; its datasource is read", () => {
  expect(cloudInitResult('{"v1": {"datasource": "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]", "errors": []}}\n'))
    .toEqual({ datasource: "DataSourceNoCloud [seed=/dev/sr0][dsmode=net]", errors: [] });
});

test("errors and recoverable errors (cloud-init's 'degraded') are both reported, by level", () => {
  expect(cloudInitResult(JSON.stringify({ v1: { datasource: "NoCloud", errors: ["('scripts_user', RuntimeError('runparts: 1 failures'))"],
    recoverable_errors: { WARNING: ["Failed to set password"], DEPRECATED: [] } } }))).toEqual({ datasource: "NoCloud",
    errors: ["('scripts_user', RuntimeError('runparts: 1 failures'))", "WARNING: Failed to set password"] });
});

test("a file that is not cloud-init's result (cut short, or another shape) is an error that names what it saw", () => {
  expect(() => cloudInitResult('{"v1": {"datas')).toThrow(CloudInitResultError);
  expect(() => cloudInitResult('{"v1": {"datasource": "x"}}')).toThrow('cloud-init\'s /run/cloud-init/result.json is not what cloud-init writes (no v1.errors list): "{\\"v1\\": {\\"datasource\\": \\"x\\"}}"');
});

test("the guest-side wait is one constant command on this boot's tmpfs file", () => {
  expect(CLOUD_INIT_DONE).toEqual(["until test -s /run/cloud-init/result.json; do sleep 1; done; cat /run/cloud-init/result.json"]);
});
