"""Run a module's main() in-process and capture what it exits or fails with."""
from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    def __init__(self, result: dict, failed: bool) -> None:
        super().__init__(result.get('msg'))
        self.result = result
        self.failed = failed


@pytest.fixture
def run_module(monkeypatch):
    def exit_json(_module, **result):
        raise ModuleExit(json.loads(json.dumps(result)), failed=False)

    def fail_json(_module, msg, **result):
        raise ModuleExit({'msg': msg, **json.loads(json.dumps(result))}, failed=True)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)

    def run(main, args: dict) -> ModuleExit:
        with patch_module_args(args), pytest.raises(ModuleExit) as outcome:
            main()
        return outcome.value
    return run
